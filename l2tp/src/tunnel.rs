//! One L2TP control connection and the calls it carries, both roles (RFC 2661 §5, §7).
//!
//! ```text
//!  LNS:  Idle ──SCCRQ / send SCCRP──▶ WaitCtlConn ──SCCCN (challenge ok)──▶ Established
//!  LAC:  ──send SCCRQ──▶ WaitCtlReply ──SCCRP (response ok) / send SCCCN──▶ Established
//!  any:  ──StopCCN sent or received──▶ Closing (hold period, §5.7) ──▶ Closed
//!        ──retransmissions exhausted──▶ Closed
//! ```
//!
//! Drive it with [`Tunnel::handle_datagram`] and [`Tunnel::handle_timeout`]; after each call
//! drain [`Tunnel::poll_transmit`] and [`Tunnel::poll_event`], then re-arm the timer from
//! [`Tunnel::poll_timeout`]. [`crate::Endpoint`] does all of this for many tunnels.
//!
//! A peer that breaks the protocol gets the protocol's answer (StopCCN or CDN with a Result
//! Code) and the call returns `Ok`; `Err(Discard)` means the datagram was dropped and nothing
//! changed.

use crate::config::Config;
use crate::event::{Event, Origin, Proxy, SessionDownReason, SessionUp, TunnelDownReason};
use crate::reliable::{Delivery, Reliable, Rto};
use crate::session::{Calls, Session, SessionState};
use crate::wire::hidden::{self, ResponseIn};
use crate::wire::message::{
    Cdn, CdnResult, ErrorCode, FramingCapabilities, FramingType, Hello, Iccn, Icrp, Icrq,
    ProtocolVersion, ResultCode, ResultError, Scccn, Sccrp, Sccrq, StopCcn, StopCcnResult,
};
use crate::wire::{self, AttributeType, Avps, ControlMessage, MessageError, Packet, Scope};
use crate::{Seq, SessionId, TunnelId};
use rand_core::CryptoRng;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The largest control message we build; buffers handed to `poll_transmit` must hold it.
pub const MAX_CONTROL_LEN: usize = 1500;

/// Length of the challenges we send (RFC 2661 §4.4.3 allows any non-zero length).
const CHALLENGE_LEN: usize = 16;

/// Tx Connect Speed we report in ICCN as a LAC (there is no physical line).
const LAC_CONNECT_SPEED: u32 = 100_000_000;

/// Which end of the control connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We answered the peer's SCCRQ and take incoming calls.
    Lns,
    /// We sent the SCCRQ and place incoming calls.
    Lac,
}

/// Control connection states (RFC 2661 §7.2), plus the hold period of §5.7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelState {
    /// LNS: created for an SCCRQ that has not been processed yet.
    Idle,
    /// LAC: SCCRQ sent, waiting for SCCRP.
    WaitCtlReply,
    /// LNS: SCCRP sent, waiting for SCCCN.
    WaitCtlConn,
    /// Calls may be placed.
    Established,
    /// StopCCN sent or received: only acknowledging until the hold period ends.
    Closing,
    /// Finished; the owner forgets the tunnel.
    Closed,
}

/// Why a datagram was dropped. Nothing changed apart from counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// The L2TP header is malformed.
    #[error("malformed header: {0}")]
    Malformed(#[from] wire::Error),
    /// A data message where a control message was expected.
    #[error("not a control message")]
    NotControl,
    /// No tunnel of ours has this ID.
    #[error("unknown tunnel {0:?}")]
    UnknownTunnel(TunnelId),
    /// The tunnel exists but belongs to another transport address.
    #[error("tunnel belongs to another peer")]
    WrongPeer,
    /// Header tunnel 0 on something that is not a usable SCCRQ (Ns 0, non-zero Assigned
    /// Tunnel ID).
    #[error("not an SCCRQ")]
    NotSccrq,
    /// Ns beyond our receive window (RFC 2661 §5.8).
    #[error("Ns {0:?} outside the receive window")]
    OutOfWindow(Seq),
    /// Our control queue is full: the message is not accepted (nor acknowledged), so the peer
    /// retransmits it once the queue drains.
    #[error("control queue full")]
    Busy,
    /// A data message for a session we do not have.
    #[error("unknown session {0:?}")]
    UnknownSession(SessionId),
    /// A data message for a call that is not established.
    #[error("session {0:?} is not established")]
    SessionNotUp(SessionId),
    /// The tunnel is closing or closed and takes no data.
    #[error("tunnel closed")]
    Closed,
}

/// Refusals of the local call operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The tunnel is not (or no longer) usable for calls, or we are not its LAC.
    #[error("tunnel cannot carry a new call")]
    TunnelNotUsable,
    /// The tunnel holds `max_sessions_per_tunnel` calls, or no session ID was free.
    #[error("too many sessions")]
    TooManySessions,
    /// No such session in this tunnel.
    #[error("unknown session")]
    UnknownSession,
    /// The control queue is full; try again after the peer acknowledged.
    #[error("control queue full")]
    QueueFull,
}

/// Counters of one tunnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// Duplicate control messages acknowledged again.
    pub duplicates: u64,
    /// Control messages held until earlier ones arrive.
    pub held: u64,
    /// Call messages for sessions we do not have, or in a state that does not expect them.
    pub unexpected: u64,
    /// ICRQs refused (limit, or as LAC).
    pub refused_calls: u64,
    /// WAN-Error-Notify messages received (ignored).
    pub wan_errors: u64,
}

/// Why a message could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// An AVP with the M bit we do not recognise (RFC 2661 §4.1): error code 8.
    UnknownMandatory,
    /// A malformed, missing, duplicated or still hidden AVP: error code 3.
    Malformed,
}

impl Fault {
    const fn of(error: MessageError) -> Option<Self> {
        match error {
            // RFC 2661 §4.4.1: an unknown message type without M is ignored.
            MessageError::UnknownMessageType {
                mandatory: false, ..
            } => None,
            MessageError::UnknownMessageType { .. } | MessageError::UnknownMandatory { .. } => {
                Some(Self::UnknownMandatory)
            }
            MessageError::Wire(_)
            | MessageError::MessageTypeNotFirst
            | MessageError::Duplicate(_)
            | MessageError::Missing(_)
            | MessageError::BadValue(_)
            | MessageError::Hidden(_) => Some(Self::Malformed),
        }
    }

    const fn error_code(self) -> ErrorCode {
        match self {
            Self::UnknownMandatory => ErrorCode::UNKNOWN_MANDATORY_AVP,
            Self::Malformed => ErrorCode::BAD_VALUE,
        }
    }
}

/// One control connection. See the module docs for the contract.
#[derive(Debug)]
pub struct Tunnel {
    config: Arc<Config>,
    role: Role,
    state: TunnelState,
    peer: SocketAddr,
    local_id: TunnelId,
    /// 0 until the peer's SCCRQ or SCCRP told us.
    peer_id: TunnelId,
    /// The peer's Host Name AVP (at most one AVP value, 1017 octets).
    peer_host_name: Vec<u8>,
    /// Ns/Nr, retransmission and the bounded queue of our control messages.
    reliable: Reliable,
    /// Whether the tunnel ever reached the established state.
    was_established: bool,
    /// Calls by our session ID; bounded by `limits.max_sessions_per_tunnel`.
    sessions: Calls,
    /// The challenge we sent, until the peer answered it.
    challenge: Option<[u8; CHALLENGE_LEN]>,
    /// LAC: the Tie Breaker of our SCCRQ.
    tie_breaker: Option<[u8; 8]>,
    /// When a tunnel still not established is given up.
    setup_deadline: Option<Instant>,
    /// When HELLO goes out if nothing arrives before (Established only).
    hello_at: Option<Instant>,
    /// When a closing tunnel is forgotten.
    close_at: Option<Instant>,
    /// LAC: Call Serial Number of the next call.
    next_call_serial: u32,
    /// Drained by the owner after every call; at most one event per session plus two per
    /// input, so bounded by the session limit.
    events: VecDeque<Event>,
    stats: TunnelStats,
}

impl Tunnel {
    /// An LNS tunnel for a peer whose SCCRQ is to follow through [`Tunnel::handle_datagram`]
    /// (header tunnel 0, Ns 0).
    #[must_use]
    pub fn accept(config: Arc<Config>, now: Instant, peer: SocketAddr, local_id: TunnelId) -> Self {
        Self::new(config, now, Role::Lns, TunnelState::Idle, peer, local_id)
    }

    /// A LAC tunnel: queues SCCRQ (with a random Tie Breaker, and a Challenge when a secret is
    /// configured) to `peer`.
    pub fn connect<R: CryptoRng + ?Sized>(
        config: Arc<Config>,
        now: Instant,
        peer: SocketAddr,
        local_id: TunnelId,
        rng: &mut R,
    ) -> Self {
        let mut tunnel = Self::new(
            Arc::clone(&config),
            now,
            Role::Lac,
            TunnelState::WaitCtlReply,
            peer,
            local_id,
        );
        let mut tie_breaker = [0u8; 8];
        rng.fill_bytes(&mut tie_breaker);
        tunnel.tie_breaker = Some(tie_breaker);
        tunnel.challenge = config.secret.as_ref().map(|_| random_challenge(rng));
        let challenge = tunnel.challenge;
        let sccrq = Sccrq {
            protocol_version: ProtocolVersion::V1_0,
            framing_capabilities: FramingCapabilities(
                FramingCapabilities::SYNCHRONOUS | FramingCapabilities::ASYNCHRONOUS,
            ),
            bearer_capabilities: None,
            // RFC 2661 §4.4.3: a Tie Breaker asks for a single tunnel between the pair.
            tie_breaker: Some(tie_breaker),
            firmware_revision: Some(config.firmware_revision),
            host_name: &config.host_name,
            vendor_name: non_empty(&config.vendor_name),
            assigned_tunnel_id: local_id,
            receive_window_size: Some(config.reliable.receive_window),
            challenge: challenge.as_ref().map(<[u8; CHALLENGE_LEN]>::as_slice),
        };
        tunnel.send(SessionId(0), &sccrq.into());
        tunnel
    }

    fn new(
        config: Arc<Config>,
        now: Instant,
        role: Role,
        state: TunnelState,
        peer: SocketAddr,
        local_id: TunnelId,
    ) -> Self {
        Self {
            reliable: Reliable::new(config.reliable),
            setup_deadline: Some(now + config.setup_timeout),
            config,
            role,
            state,
            peer,
            local_id,
            peer_id: TunnelId(0),
            peer_host_name: Vec::new(),
            was_established: false,
            sessions: Calls::default(),
            challenge: None,
            tie_breaker: None,
            hello_at: None,
            close_at: None,
            next_call_serial: 1,
            events: VecDeque::new(),
            stats: TunnelStats::default(),
        }
    }

    /// Our tunnel ID (the header of what the peer sends carries it).
    #[must_use]
    pub const fn local_id(&self) -> TunnelId {
        self.local_id
    }

    /// The peer's tunnel ID (0 until known).
    #[must_use]
    pub const fn peer_id(&self) -> TunnelId {
        self.peer_id
    }

    /// The peer's transport address.
    #[must_use]
    pub const fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Our role.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The control connection state.
    #[must_use]
    pub const fn state(&self) -> TunnelState {
        self.state
    }

    /// Whether the tunnel is finished and may be forgotten.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == TunnelState::Closed
    }

    /// Calls in the tunnel, established or not.
    #[must_use]
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The state of one of our calls.
    #[must_use]
    pub fn session_state(&self, session: SessionId) -> Option<SessionState> {
        self.sessions.get(&session.0).map(|s| s.state)
    }

    /// The peer's session ID of an established call.
    #[must_use]
    pub fn peer_session(&self, session: SessionId) -> Option<SessionId> {
        self.sessions
            .get(&session.0)
            .filter(|s| s.state == SessionState::Established)
            .map(|s| s.peer)
    }

    /// LAC, while waiting for SCCRP: the Tie Breaker our SCCRQ carried.
    #[must_use]
    pub fn pending_tie_breaker(&self) -> Option<[u8; 8]> {
        self.tie_breaker
            .filter(|_| self.state == TunnelState::WaitCtlReply)
    }

    /// Whether an SCCRQ from the peer with the Assigned Tunnel ID of the one that opened this
    /// tunnel is a retransmission of it: always, except once a tunnel that was established is
    /// closing (then the peer is opening a new control connection with a reused ID).
    #[must_use]
    pub fn owns_sccrq_retransmissions(&self) -> bool {
        match self.state {
            TunnelState::Idle | TunnelState::WaitCtlConn | TunnelState::Established => true,
            TunnelState::Closing => !self.was_established,
            TunnelState::WaitCtlReply | TunnelState::Closed => false,
        }
    }

    /// Refuses a data message for a call that cannot take one.
    pub(crate) fn check_data(&self, session: SessionId) -> Result<(), Discard> {
        if self.state != TunnelState::Established {
            return Err(Discard::Closed);
        }
        match self.sessions.get(&session.0) {
            None => Err(Discard::UnknownSession(session)),
            Some(s) if s.state != SessionState::Established => Err(Discard::SessionNotUp(session)),
            Some(_) => Ok(()),
        }
    }

    /// The SCCRQ that created this tunnel came again (our SCCRP or its acknowledgement was
    /// lost): RFC 2661 §5.8, acknowledge the duplicate, do not process it again.
    pub(crate) fn handle_sccrq_again(&mut self, now: Instant, nr: Seq) {
        self.reliable.on_ack(now, nr);
        let _ = self.reliable.on_receive(now, Seq(0), &[], false);
        self.stats.duplicates += 1;
    }

    /// What must not change when a datagram is discarded (fuzzing and tests).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn digest(&self) -> (TunnelState, Seq, usize, usize) {
        (
            self.state,
            self.reliable.next_nr(),
            self.reliable.unacknowledged(),
            self.sessions.len(),
        )
    }

    /// Counters.
    #[must_use]
    pub const fn stats(&self) -> TunnelStats {
        self.stats
    }

    /// Feeds one control datagram routed to this tunnel (header tunnel = our ID, or 0 for the
    /// SCCRQ of a tunnel made by [`Tunnel::accept`]). Hidden AVPs are revealed in place.
    ///
    /// # Errors
    /// [`Discard`]: the datagram was dropped and nothing changed.
    pub fn handle_datagram<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        datagram: &mut [u8],
        rng: &mut R,
    ) -> Result<(), Discard> {
        let packet = Packet::new_checked(&*datagram)?;
        if !packet.is_control() {
            return Err(Discard::NotControl);
        }
        let (ns, nr) = packet.sequence().ok_or(Discard::NotControl)?;
        let expected = if self.state == TunnelState::Idle {
            TunnelId(0)
        } else {
            self.local_id
        };
        if packet.tunnel_id() != expected {
            return Err(Discard::UnknownTunnel(packet.tunnel_id()));
        }
        if self.state == TunnelState::Closed {
            return Err(Discard::Closed);
        }
        let is_zlb = packet.is_zlb();
        let end = packet.payload_range().end;
        let delivery = if is_zlb {
            Delivery::Duplicate
        } else {
            self.reliable.classify(ns)
        };
        match delivery {
            // RFC 2661 §5.8: beyond our window the message is dropped.
            Delivery::OutOfWindow => return Err(Discard::OutOfWindow(ns)),
            // Every message we process answers with at most one message: make sure it fits
            // before accepting it.
            Delivery::InOrder if !self.reliable.has_room() => return Err(Discard::Busy),
            Delivery::InOrder | Delivery::Duplicate | Delivery::Ahead => {}
        }
        // RFC 2661 §5.8: Nr acknowledges everything before it.
        self.reliable.on_ack(now, nr);
        if self.state == TunnelState::Established {
            // RFC 2661 §6.5: HELLO only after a quiet period.
            self.hello_at = Some(now + self.config.hello_interval);
        }
        let message = datagram.get_mut(..end).ok_or(Discard::NotControl)?;
        match self.reliable.on_receive(now, ns, message, is_zlb) {
            Delivery::InOrder => self.process(now, message, rng),
            Delivery::Duplicate if !is_zlb => self.stats.duplicates += 1,
            Delivery::Ahead => self.stats.held += 1,
            Delivery::Duplicate | Delivery::OutOfWindow => {}
        }
        self.drain_ready(now, rng);
        self.start_pending_calls();
        Ok(())
    }

    /// Processes held messages that became in order, while the queue has room for answers.
    fn drain_ready<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        while self.state != TunnelState::Closed && self.reliable.has_room() {
            let Some(mut message) = self.reliable.take_ready() else {
                break;
            };
            self.reliable.schedule_ack(now);
            self.process(now, &mut message, rng);
        }
    }

    /// Reveals, parses and acts on one in-order message (header included).
    fn process<R: CryptoRng + ?Sized>(&mut self, now: Instant, message: &mut [u8], rng: &mut R) {
        let Ok(packet) = Packet::new_checked(&*message) else {
            return;
        };
        let header_session = packet.session_id();
        let range = packet.payload_range();
        let Some(body) = message.get_mut(range) else {
            return;
        };
        let config = Arc::clone(&self.config);
        let len = match &config.secret {
            // RFC 2661 §4.3: hidden values are revealed with the shared secret.
            Some(secret) => match hidden::reveal_body(body, secret.expose()) {
                Ok(len) => len,
                Err(_) => {
                    self.on_fault(now, header_session, body, Fault::Malformed);
                    return;
                }
            },
            None => body.len(),
        };
        let body = body.get(..len).unwrap_or_default();
        match ControlMessage::parse(Avps::new(body)) {
            Ok(message) => self.on_message(now, header_session, message, rng),
            Err(error) => {
                if let Some(fault) = Fault::of(error) {
                    self.on_fault(now, header_session, body, fault);
                }
            }
        }
    }

    fn on_message<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        header_session: SessionId,
        message: ControlMessage<'_>,
        rng: &mut R,
    ) {
        // RFC 2661 §5.7: after StopCCN messages are only acknowledged.
        if matches!(self.state, TunnelState::Closing | TunnelState::Closed) {
            return;
        }
        if message.scope() == Scope::Session && self.state != TunnelState::Established {
            // RFC 2661 §7.2: call management before the tunnel is up is a state machine error.
            self.stop(now, StopCcnResult::FSM_ERROR, None);
            return;
        }
        match message {
            ControlMessage::Sccrq(m) => self.on_sccrq(now, &m, rng),
            ControlMessage::Sccrp(m) => self.on_sccrp(now, &m),
            ControlMessage::Scccn(m) => self.on_scccn(now, m),
            ControlMessage::StopCcn(m) => {
                let result = m.result_code;
                self.enter_closing(
                    now,
                    TunnelDownReason::Stopped {
                        origin: Origin::Peer,
                        result: StopCcnResult(result.result),
                        error: result.error.map(|e| e.code),
                    },
                );
            }
            // RFC 2661 §6.5: HELLO only needs the acknowledgement the channel sends.
            ControlMessage::Hello(_) => {}
            ControlMessage::Icrq(m) => self.on_icrq(now, &m, rng),
            ControlMessage::Icrp(m) => self.on_icrp(header_session, m),
            ControlMessage::Iccn(m) => self.on_iccn(header_session, &m),
            ControlMessage::Cdn(m) => self.on_cdn(header_session, &m),
            ControlMessage::Ocrq(m) => {
                // RFC 2661 §6.6: we place no outgoing calls; refuse with CDN, keeping no state.
                self.stats.refused_calls += 1;
                self.send_cdn(
                    m.assigned_session_id,
                    SessionId(0),
                    CdnResult::PERMANENT_LACK_OF_FACILITIES,
                    None,
                );
            }
            // We never send OCRQ, so replies to one are unexpected.
            ControlMessage::Ocrp(_) | ControlMessage::Occn(_) => self.stats.unexpected += 1,
            // RFC 2661 §6.13: WEN is informational.
            ControlMessage::Wen(_) => self.stats.wan_errors += 1,
            ControlMessage::Sli(m) => {
                if self.sessions.contains_key(&header_session.0) {
                    // RFC 2661 §6.14: the ACCM matters to HDLC framing, which we do not do.
                    self.events.push_back(Event::SetLinkInfo {
                        peer: self.peer,
                        tunnel: self.local_id,
                        session: header_session,
                        accm: m.accm,
                    });
                } else {
                    self.stats.unexpected += 1;
                }
            }
        }
    }

    fn on_sccrq<R: CryptoRng + ?Sized>(&mut self, now: Instant, m: &Sccrq<'_>, rng: &mut R) {
        if self.role != Role::Lns || self.state != TunnelState::Idle {
            self.stop(now, StopCcnResult::FSM_ERROR, None);
            return;
        }
        self.learn_peer(m.assigned_tunnel_id, m.receive_window_size, m.host_name);
        // RFC 2661 §4.4.3: we speak protocol version 1.
        if m.protocol_version.version != ProtocolVersion::V1_0.version {
            self.stop(now, StopCcnResult::UNSUPPORTED_PROTOCOL_VERSION, None);
            return;
        }
        let config = Arc::clone(&self.config);
        let secret = config.secret.as_ref().map(crate::config::Secret::expose);
        let response = match (m.challenge, secret) {
            (Some(challenge), Some(secret)) => Some(hidden::challenge_response(
                ResponseIn::Sccrp,
                secret,
                challenge,
            )),
            // RFC 2661 §5.1.1: without the secret we cannot authenticate ourselves.
            (Some(_), None) => {
                self.stop(now, StopCcnResult::NOT_AUTHORIZED, None);
                return;
            }
            (None, _) => None,
        };
        // RFC 2661 §5.1.1: with a secret we challenge the peer in SCCRP.
        self.challenge = secret.map(|_| random_challenge(rng));
        let challenge = self.challenge;
        let sccrp = Sccrp {
            protocol_version: ProtocolVersion::V1_0,
            framing_capabilities: FramingCapabilities(
                FramingCapabilities::SYNCHRONOUS | FramingCapabilities::ASYNCHRONOUS,
            ),
            bearer_capabilities: None,
            firmware_revision: Some(config.firmware_revision),
            host_name: &config.host_name,
            vendor_name: non_empty(&config.vendor_name),
            assigned_tunnel_id: self.local_id,
            receive_window_size: Some(config.reliable.receive_window),
            challenge: challenge.as_ref().map(<[u8; CHALLENGE_LEN]>::as_slice),
            challenge_response: response,
        };
        self.send(SessionId(0), &sccrp.into());
        self.state = TunnelState::WaitCtlConn;
    }

    fn on_sccrp(&mut self, now: Instant, m: &Sccrp<'_>) {
        if self.role != Role::Lac || self.state != TunnelState::WaitCtlReply {
            self.stop(now, StopCcnResult::FSM_ERROR, None);
            return;
        }
        self.learn_peer(m.assigned_tunnel_id, m.receive_window_size, m.host_name);
        if m.protocol_version.version != ProtocolVersion::V1_0.version {
            self.stop(now, StopCcnResult::UNSUPPORTED_PROTOCOL_VERSION, None);
            return;
        }
        let config = Arc::clone(&self.config);
        let secret = config.secret.as_ref().map(crate::config::Secret::expose);
        if let (Some(challenge), Some(secret)) = (self.challenge, secret) {
            // RFC 2661 §5.1.1: the LNS must prove it knows the secret.
            let proven = m.challenge_response.is_some_and(|response| {
                hidden::verify_challenge_response(ResponseIn::Sccrp, secret, &challenge, &response)
            });
            if !proven {
                self.stop(now, StopCcnResult::NOT_AUTHORIZED, None);
                return;
            }
        }
        let response = match (m.challenge, secret) {
            (Some(challenge), Some(secret)) => Some(hidden::challenge_response(
                ResponseIn::Scccn,
                secret,
                challenge,
            )),
            (Some(_), None) => {
                self.stop(now, StopCcnResult::NOT_AUTHORIZED, None);
                return;
            }
            (None, _) => None,
        };
        self.send(
            SessionId(0),
            &Scccn {
                challenge_response: response,
            }
            .into(),
        );
        self.establish(now);
    }

    fn on_scccn(&mut self, now: Instant, m: Scccn) {
        if self.role != Role::Lns || self.state != TunnelState::WaitCtlConn {
            self.stop(now, StopCcnResult::FSM_ERROR, None);
            return;
        }
        if let (Some(challenge), Some(secret)) = (self.challenge, self.config.secret.as_ref()) {
            // RFC 2661 §5.1.1: the LAC must answer our challenge correctly.
            let proven = m.challenge_response.is_some_and(|response| {
                hidden::verify_challenge_response(
                    ResponseIn::Scccn,
                    secret.expose(),
                    &challenge,
                    &response,
                )
            });
            if !proven {
                self.stop(now, StopCcnResult::NOT_AUTHORIZED, None);
                return;
            }
        }
        self.establish(now);
    }

    fn learn_peer(&mut self, id: TunnelId, window: Option<u16>, host_name: &[u8]) {
        self.peer_id = id;
        self.reliable.set_peer_tunnel(id.0);
        // RFC 2661 §4.4.3: a peer that sends no Receive Window Size has a window of 4.
        self.reliable.set_peer_window(window.unwrap_or(4));
        self.peer_host_name = host_name.to_vec();
    }

    fn establish(&mut self, now: Instant) {
        self.state = TunnelState::Established;
        self.was_established = true;
        self.challenge = None;
        self.setup_deadline = None;
        self.hello_at = Some(now + self.config.hello_interval);
        self.events.push_back(Event::TunnelUp {
            peer: self.peer,
            tunnel: self.local_id,
            peer_tunnel: self.peer_id,
            peer_host_name: self.peer_host_name.clone(),
        });
        self.start_pending_calls();
    }

    fn on_icrq<R: CryptoRng + ?Sized>(&mut self, now: Instant, m: &Icrq<'_>, rng: &mut R) {
        let peer_session = m.assigned_session_id;
        // RFC 2661 §4.4.3: a session ID of 0 cannot address the call.
        if peer_session.0 == 0 {
            self.stats.unexpected += 1;
            return;
        }
        if self.role != Role::Lns {
            self.stats.refused_calls += 1;
            self.send_cdn(peer_session, SessionId(0), CdnResult::GENERAL_ERROR, None);
            return;
        }
        let local = if self.sessions.len() < self.config.limits.max_sessions_per_tunnel {
            self.allocate_session(rng)
        } else {
            None
        };
        let Some(local) = local else {
            self.stats.refused_calls += 1;
            self.send_cdn(
                peer_session,
                SessionId(0),
                CdnResult::GENERAL_ERROR,
                Some(ErrorCode::INSUFFICIENT_RESOURCES),
            );
            return;
        };
        self.sessions.insert(
            local.0,
            Session {
                local,
                peer: peer_session,
                state: SessionState::WaitConnect,
                call_serial_number: m.call_serial_number,
                deadline: Some(now + self.config.setup_timeout),
            },
        );
        self.send(
            peer_session,
            &Icrp {
                assigned_session_id: local,
            }
            .into(),
        );
    }

    fn on_icrp(&mut self, header_session: SessionId, m: Icrp) {
        let waiting = self
            .sessions
            .get(&header_session.0)
            .is_some_and(|s| s.state == SessionState::WaitReply);
        if !waiting || m.assigned_session_id.0 == 0 {
            self.stats.unexpected += 1;
            return;
        }
        let iccn = Iccn {
            tx_connect_speed: LAC_CONNECT_SPEED,
            framing_type: FramingType(FramingCapabilities::SYNCHRONOUS),
            initial_received_lcp_confreq: None,
            last_sent_lcp_confreq: None,
            last_received_lcp_confreq: None,
            proxy_authen_type: None,
            proxy_authen_name: None,
            proxy_authen_challenge: None,
            proxy_authen_id: None,
            proxy_authen_response: None,
            private_group_id: None,
            rx_connect_speed: None,
            sequencing_required: false,
        };
        self.send(m.assigned_session_id, &iccn.into());
        if let Some(session) = self.sessions.get_mut(&header_session.0) {
            session.peer = m.assigned_session_id;
            session.state = SessionState::Established;
            session.deadline = None;
            let up = SessionUp {
                peer: self.peer,
                tunnel: self.local_id,
                session: session.local,
                peer_session: session.peer,
                call_serial_number: session.call_serial_number,
                tx_connect_speed: iccn.tx_connect_speed,
                framing_type: iccn.framing_type,
                sequencing_required: false,
                proxy: Proxy::default(),
            };
            self.events.push_back(Event::SessionUp(up));
        }
    }

    fn on_iccn(&mut self, header_session: SessionId, m: &Iccn<'_>) {
        let Some(session) = self
            .sessions
            .get_mut(&header_session.0)
            .filter(|s| s.state == SessionState::WaitConnect)
        else {
            self.stats.unexpected += 1;
            return;
        };
        session.state = SessionState::Established;
        session.deadline = None;
        let up = SessionUp {
            peer: self.peer,
            tunnel: self.local_id,
            session: session.local,
            peer_session: session.peer,
            call_serial_number: session.call_serial_number,
            tx_connect_speed: m.tx_connect_speed,
            framing_type: m.framing_type,
            sequencing_required: m.sequencing_required,
            proxy: Proxy::from_iccn(m),
        };
        self.events.push_back(Event::SessionUp(up));
    }

    fn on_cdn(&mut self, header_session: SessionId, m: &Cdn<'_>) {
        // The peer may send CDN before it learnt our session ID (header 0): find the call by
        // its own ID then.
        let key = if header_session.0 == 0 {
            self.sessions
                .values()
                .find(|s| s.peer == m.assigned_session_id)
                .map(|s| s.local.0)
        } else {
            Some(header_session.0)
        };
        let Some(session) = key.and_then(|k| self.sessions.remove(&k)) else {
            self.stats.unexpected += 1;
            return;
        };
        self.session_down(
            &session,
            SessionDownReason::Disconnected {
                origin: Origin::Peer,
                result: CdnResult(m.result_code.result),
                error: m.result_code.error.map(|e| e.code),
            },
        );
    }

    /// A message we could not use: RFC 2661 §4.1 tears down the tunnel or just the call, by
    /// the message's scope.
    fn on_fault(&mut self, now: Instant, header_session: SessionId, body: &[u8], fault: Fault) {
        if matches!(self.state, TunnelState::Closing | TunnelState::Closed) {
            return;
        }
        let scope = ControlMessage::peek_type(body).and_then(wire::MessageType::scope);
        if scope != Some(Scope::Session) || self.state != TunnelState::Established {
            self.stop(now, StopCcnResult::GENERAL_ERROR, Some(fault.error_code()));
            return;
        }
        // RFC 2661 §4.1: a session-scoped message only costs the call.
        if let Some(session) = self.sessions.remove(&header_session.0) {
            let peer = peek_session_id(body).unwrap_or(session.peer);
            self.send_cdn(
                peer,
                session.local,
                CdnResult::GENERAL_ERROR,
                Some(fault.error_code()),
            );
            self.session_down(
                &session,
                SessionDownReason::Disconnected {
                    origin: Origin::Local,
                    result: CdnResult::GENERAL_ERROR,
                    error: Some(fault.error_code()),
                },
            );
        } else if let Some(peer) = peek_session_id(body).filter(|id| id.0 != 0) {
            // An ICRQ we could not parse: refuse the call it announces.
            self.send_cdn(
                peer,
                SessionId(0),
                CdnResult::GENERAL_ERROR,
                Some(fault.error_code()),
            );
        } else {
            self.stats.unexpected += 1;
        }
    }

    /// Sends StopCCN (RFC 2661 §6.4) and enters the hold period.
    fn stop(&mut self, now: Instant, result: StopCcnResult, error: Option<ErrorCode>) {
        self.stop_with(
            now,
            result,
            error,
            TunnelDownReason::Stopped {
                origin: Origin::Local,
                result,
                error,
            },
        );
    }

    fn stop_with(
        &mut self,
        now: Instant,
        result: StopCcnResult,
        error: Option<ErrorCode>,
        reason: TunnelDownReason,
    ) {
        if matches!(self.state, TunnelState::Closing | TunnelState::Closed) {
            return;
        }
        let stop = StopCcn {
            assigned_tunnel_id: self.local_id,
            result_code: result_code(result.0, error),
        };
        if let Some(bytes) = self.encode(SessionId(0), &stop.into()) {
            // The last message always finds room: after the waiting ones while there is
            // room, in place of the unsent ones when the queue is full.
            let _ = self.reliable.queue_final(bytes);
        }
        self.enter_closing(now, reason);
    }

    /// RFC 2661 §5.7: keep the tunnel for the hold period to acknowledge retransmissions.
    fn enter_closing(&mut self, now: Instant, reason: TunnelDownReason) {
        self.close_sessions();
        self.state = TunnelState::Closing;
        self.close_at = Some(now + self.config.hold_period);
        self.hello_at = None;
        self.setup_deadline = None;
        self.tie_breaker = None;
        self.challenge = None;
        self.tunnel_down(reason);
    }

    fn tunnel_down(&mut self, reason: TunnelDownReason) {
        self.events.push_back(Event::TunnelDown {
            peer: self.peer,
            tunnel: self.local_id,
            reason,
            peer_host_name: self.peer_host_name.clone(),
        });
    }

    fn close_sessions(&mut self) {
        let sessions = std::mem::take(&mut self.sessions);
        for session in sessions.values() {
            self.session_down(session, SessionDownReason::TunnelDown);
        }
    }

    fn session_down(&mut self, session: &Session, reason: SessionDownReason) {
        self.events.push_back(Event::SessionDown {
            peer: self.peer,
            tunnel: self.local_id,
            session: session.local,
            peer_session: session.peer,
            reason,
        });
    }

    /// Forgets the tunnel at once without telling the peer (tie breaker lost).
    pub(crate) fn abandon(&mut self, reason: TunnelDownReason) {
        if self.state == TunnelState::Closed {
            return;
        }
        self.close_sessions();
        if self.state != TunnelState::Closing {
            self.tunnel_down(reason);
        }
        self.state = TunnelState::Closed;
    }

    /// Runs every timer due at `now`: retransmission and delayed acknowledgement, HELLO, setup
    /// timeouts of the tunnel and its calls, the end of the hold period. Harmless when nothing
    /// is due.
    pub fn handle_timeout<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        if self.state == TunnelState::Closed {
            return;
        }
        if self.reliable.handle_timeout(now) == Rto::GiveUp && self.state != TunnelState::Closing {
            // RFC 2661 §5.8: the peer stopped acknowledging; it is gone.
            self.close_sessions();
            self.tunnel_down(TunnelDownReason::PeerUnresponsive);
            self.state = TunnelState::Closed;
            return;
        }
        if self.state == TunnelState::Closing {
            if self.close_at.is_some_and(|at| at <= now) {
                self.state = TunnelState::Closed;
            }
            return;
        }
        if self.setup_deadline.is_some_and(|at| at <= now) {
            self.stop_with(
                now,
                StopCcnResult::GENERAL_ERROR,
                None,
                TunnelDownReason::SetupTimeout,
            );
            return;
        }
        if self.hello_at.is_some_and(|at| at <= now) && self.reliable.is_idle() {
            // RFC 2661 §6.5: keepalive after a quiet period; its retransmissions detect a dead
            // peer. While a message is unacknowledged its own retransmissions do that.
            if self.reliable.has_room() {
                self.send(SessionId(0), &Hello {}.into());
            }
            self.hello_at = Some(now + self.config.hello_interval);
        }
        let expired: Vec<u16> = self
            .sessions
            .values()
            .filter(|s| s.deadline.is_some_and(|at| at <= now))
            .map(|s| s.local.0)
            .collect();
        for key in expired {
            if let Some(session) = self.sessions.remove(&key) {
                if session.peer.0 != 0 && self.reliable.has_room() {
                    self.send_cdn(session.peer, session.local, CdnResult::TIMEOUT, None);
                }
                self.session_down(&session, SessionDownReason::SetupTimeout);
            }
        }
        self.drain_ready(now, rng);
        self.start_pending_calls();
    }

    /// The earliest instant at which [`Tunnel::handle_timeout`] must run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match self.state {
            TunnelState::Closed => return None,
            TunnelState::Closing => self.close_at,
            TunnelState::Idle | TunnelState::WaitCtlReply | TunnelState::WaitCtlConn => {
                self.setup_deadline
            }
            TunnelState::Established => self.hello_at.filter(|_| self.reliable.is_idle()),
        };
        let sessions = self.sessions.values().filter_map(|s| s.deadline).min();
        [self.reliable.poll_timeout(), own, sessions]
            .into_iter()
            .flatten()
            .min()
    }

    /// Writes the next control message (or ZLB) into `buf` (at least [`MAX_CONTROL_LEN`]
    /// bytes) and returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.state == TunnelState::Closed {
            return None;
        }
        self.reliable.poll_transmit(now, buf)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() {
            // Events come in bursts (setup, teardown); an idle tunnel keeps no room for them.
            self.events.shrink_to(0);
        }
        event
    }

    /// LAC: places an incoming call (RFC 2661 §7.4.1). The ICRQ goes out once the tunnel is
    /// established; [`Event::SessionUp`] follows the ICRP.
    ///
    /// # Errors
    /// [`CallError`].
    pub fn place_call<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
    ) -> Result<SessionId, CallError> {
        let usable = matches!(
            self.state,
            TunnelState::WaitCtlReply | TunnelState::Established
        );
        if self.role != Role::Lac || !usable {
            return Err(CallError::TunnelNotUsable);
        }
        if self.sessions.len() >= self.config.limits.max_sessions_per_tunnel {
            return Err(CallError::TooManySessions);
        }
        let local = self
            .allocate_session(rng)
            .ok_or(CallError::TooManySessions)?;
        let call_serial_number = self.next_call_serial;
        self.next_call_serial = self.next_call_serial.wrapping_add(1);
        self.sessions.insert(
            local.0,
            Session {
                local,
                peer: SessionId(0),
                state: SessionState::WaitTunnel,
                call_serial_number,
                deadline: Some(now + self.config.setup_timeout),
            },
        );
        self.start_pending_calls();
        Ok(local)
    }

    /// LAC: sends ICRQ for the calls waiting for the tunnel, while the queue has room.
    fn start_pending_calls(&mut self) {
        if self.state != TunnelState::Established || self.role != Role::Lac {
            return;
        }
        let waiting: Vec<(u16, u32)> = self
            .sessions
            .values()
            .filter(|s| s.state == SessionState::WaitTunnel)
            .map(|s| (s.local.0, s.call_serial_number))
            .collect();
        for (key, call_serial_number) in waiting {
            if !self.reliable.has_room() {
                break;
            }
            let icrq = Icrq {
                assigned_session_id: SessionId(key),
                call_serial_number,
                bearer_type: None,
                physical_channel_id: None,
                calling_number: None,
                called_number: None,
                sub_address: None,
            };
            self.send(SessionId(0), &icrq.into());
            if let Some(session) = self.sessions.get_mut(&key) {
                session.state = SessionState::WaitReply;
            }
        }
    }

    /// Ends one call with CDN (RFC 2661 §6.12) and reports [`Event::SessionDown`].
    ///
    /// # Errors
    /// [`CallError::UnknownSession`], or [`CallError::QueueFull`] (nothing changed then).
    pub fn close_session(
        &mut self,
        _now: Instant,
        session: SessionId,
        result: CdnResult,
        error: Option<ErrorCode>,
    ) -> Result<(), CallError> {
        if !self.sessions.contains_key(&session.0) {
            return Err(CallError::UnknownSession);
        }
        if !self.reliable.has_room() {
            return Err(CallError::QueueFull);
        }
        let Some(removed) = self.sessions.remove(&session.0) else {
            return Err(CallError::UnknownSession);
        };
        // A LAC call whose ICRQ has not gone out yet needs no CDN.
        if removed.state != SessionState::WaitTunnel {
            self.send_cdn(removed.peer, removed.local, result, error);
        }
        self.session_down(
            &removed,
            SessionDownReason::Disconnected {
                origin: Origin::Local,
                result,
                error,
            },
        );
        Ok(())
    }

    /// Ends the tunnel with StopCCN (RFC 2661 §6.4) and enters the hold period; every call
    /// goes down. Harmless on a tunnel already closing.
    pub fn close(&mut self, now: Instant, result: StopCcnResult, error: Option<ErrorCode>) {
        self.stop(now, result, error);
    }

    /// The CDN of RFC 2661 §6.12: header session = the peer's, Assigned Session ID = ours.
    fn send_cdn(
        &mut self,
        peer_session: SessionId,
        local_session: SessionId,
        result: CdnResult,
        error: Option<ErrorCode>,
    ) {
        let cdn = Cdn {
            result_code: result_code(result.0, error),
            assigned_session_id: local_session,
            q931_cause_code: None,
        };
        self.send(peer_session, &cdn.into());
    }

    /// Queues a message for reliable delivery. Callers make sure there is room first.
    fn send(&mut self, session: SessionId, message: &ControlMessage<'_>) {
        if let Some(bytes) = self.encode(session, message) {
            let _ = self.reliable.queue(bytes);
        }
    }

    fn encode(&self, session: SessionId, message: &ControlMessage<'_>) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; MAX_CONTROL_LEN];
        let len = wire::write_control(&mut buf, self.peer_id, session, Seq(0), Seq(0), |w| {
            message.emit(w)
        })
        .ok()?;
        buf.truncate(len);
        Some(buf)
    }

    /// A random non-zero session ID not in use in this tunnel.
    fn allocate_session<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Option<SessionId> {
        (0..64)
            .map(|_| random_u16(rng))
            .find(|id| *id != 0 && !self.sessions.contains_key(id))
            .map(SessionId)
    }
}

/// A Result Code AVP value without an error message.
const fn result_code(result: u16, error: Option<ErrorCode>) -> ResultCode<'static> {
    ResultCode {
        result,
        error: match error {
            Some(code) => Some(ResultError { code, message: &[] }),
            None => None,
        },
    }
}

fn non_empty(bytes: &[u8]) -> Option<&[u8]> {
    (!bytes.is_empty()).then_some(bytes)
}

fn random_challenge<R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; CHALLENGE_LEN] {
    let mut challenge = [0u8; CHALLENGE_LEN];
    rng.fill_bytes(&mut challenge);
    challenge
}

/// A uniformly random 16-bit value.
pub(crate) fn random_u16<R: CryptoRng + ?Sized>(rng: &mut R) -> u16 {
    let [a, b, _, _] = rng.next_u32().to_be_bytes();
    u16::from_be_bytes([a, b])
}

/// The Assigned Session ID of a body that did not parse, if it carries a plain one.
fn peek_session_id(body: &[u8]) -> Option<SessionId> {
    Avps::new(body)
        .map_while(Result::ok)
        .find(|avp| {
            avp.is_ietf() && !avp.hidden && avp.attribute == AttributeType::ASSIGNED_SESSION_ID
        })
        .and_then(|avp| <[u8; 2]>::try_from(avp.value).ok())
        .map(|v| SessionId(u16::from_be_bytes(v)))
}
