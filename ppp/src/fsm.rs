//! The option negotiation automaton of RFC 1661 §4, shared by LCP, IPCP and IPV6CP.
//!
//! [`transition`] is the state-transition table of RFC 1661 §4.1 written as one exhaustive
//! `match` (no wildcard arm): a reviewer can diff it against the RFC cell by cell, and the
//! `every_cell_of_the_rfc_1661_table` test checks it against an independently typed copy.
//! [`Fsm`] executes the actions, owns the restart timer and the counters of §4.6, and delegates
//! protocol judgement to a [`Negotiator`].

use crate::outbox::Outbox;
use crate::wire::{Code, Options, Packet, Protocol, write_option, write_packet};
use std::time::{Duration, Instant};

/// States of RFC 1661 §4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Lower layer down, no open requested.
    Initial,
    /// Open requested, lower layer down.
    Starting,
    /// Lower layer up, no open requested.
    Closed,
    /// Negotiation ended (terminated or failed) with the lower layer up; waiting passively.
    Stopped,
    /// Terminate-Request sent after Close.
    Closing,
    /// Terminate-Request sent, will stop rather than close.
    Stopping,
    /// Configure-Request sent, no Ack yet either way.
    ReqSent,
    /// Our request was acknowledged; the peer's not yet.
    AckRcvd,
    /// We acknowledged the peer's request; ours not yet.
    AckSent,
    /// Both directions configured.
    Opened,
}

/// Events of RFC 1661 §4.3 (the RFC's abbreviation in each doc comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Up: the lower layer is ready.
    Up,
    /// Down: the lower layer went away.
    Down,
    /// Open: administrative open.
    Open,
    /// Close: administrative close.
    Close,
    /// TO+: restart timer expired, counter not exhausted.
    TimeoutRetry,
    /// TO-: restart timer expired, counter exhausted.
    TimeoutGiveUp,
    /// RCR+: acceptable Configure-Request.
    GoodRequest,
    /// RCR-: unacceptable Configure-Request.
    BadRequest,
    /// RCA: Configure-Ack.
    Ack,
    /// RCN: Configure-Nak or Configure-Reject.
    Nak,
    /// RTR: Terminate-Request.
    TermRequest,
    /// RTA: Terminate-Ack.
    TermAck,
    /// RUC: unknown code.
    UnknownCode,
    /// RXJ+: Code-Reject or Protocol-Reject of something we can live without.
    PermittedReject,
    /// RXJ-: Code-Reject or Protocol-Reject that makes the protocol unusable.
    FatalReject,
    /// RXR: Echo-Request, Echo-Reply or Discard-Request.
    EchoOrDiscard,
}

/// Actions of RFC 1661 §4.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// tlu: this-layer-up.
    Tlu,
    /// tld: this-layer-down.
    Tld,
    /// tls: this-layer-started.
    Tls,
    /// tlf: this-layer-finished.
    Tlf,
    /// irc: initialise the restart counter.
    Irc,
    /// zrc: zero the restart counter.
    Zrc,
    /// scr: send Configure-Request.
    Scr,
    /// sca: send Configure-Ack.
    Sca,
    /// scn: send Configure-Nak or Configure-Reject.
    Scn,
    /// str: send Terminate-Request.
    Str,
    /// sta: send Terminate-Ack.
    Sta,
    /// scj: send Code-Reject.
    Scj,
    /// ser: send Echo-Reply.
    Ser,
}

/// One cell of the table: the actions in order, then the next state. `None` marks the cells the
/// RFC leaves empty ("-": cannot happen); they are ignored.
pub type Cell = Option<(&'static [Action], State)>;

/// The state-transition table of RFC 1661 §4.1. Option "r" (restart) is not taken: Open in
/// Stopped, Stopping or Opened leaves the state as it is.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one arm per table cell group, mirroring the RFC"
)]
#[expect(
    clippy::match_same_arms,
    reason = "arms follow the RFC's columns, not shared actions"
)]
pub const fn transition(state: State, event: Event) -> Cell {
    use Action::{Irc, Sca, Scj, Scn, Scr, Ser, Sta, Str, Tld, Tlf, Tls, Tlu, Zrc};
    use Event::{
        Ack, BadRequest, Close, Down, EchoOrDiscard, FatalReject, GoodRequest, Nak, Open,
        PermittedReject, TermAck, TermRequest, TimeoutGiveUp, TimeoutRetry, UnknownCode, Up,
    };
    use State::{
        AckRcvd, AckSent, Closed, Closing, Initial, Opened, ReqSent, Starting, Stopped, Stopping,
    };
    Some(match (state, event) {
        // Up
        (Initial, Up) => (&[], Closed),
        (Starting, Up) => (&[Irc, Scr], ReqSent),
        (Closed | Stopped | Closing | Stopping | ReqSent | AckRcvd | AckSent | Opened, Up) => {
            return None;
        }
        // Down
        (Initial | Starting, Down) => return None,
        (Closed, Down) => (&[], Initial),
        (Stopped, Down) => (&[Tls], Starting),
        (Closing, Down) => (&[], Initial),
        (Stopping | ReqSent | AckRcvd | AckSent, Down) => (&[], Starting),
        (Opened, Down) => (&[Tld], Starting),
        // Open
        (Initial, Open) => (&[Tls], Starting),
        (Starting, Open) => (&[], Starting),
        (Closed, Open) => (&[Irc, Scr], ReqSent),
        (Stopped, Open) => (&[], Stopped),
        (Closing | Stopping, Open) => (&[], Stopping),
        (ReqSent, Open) => (&[], ReqSent),
        (AckRcvd, Open) => (&[], AckRcvd),
        (AckSent, Open) => (&[], AckSent),
        (Opened, Open) => (&[], Opened),
        // Close
        (Initial, Close) => (&[], Initial),
        (Starting, Close) => (&[Tlf], Initial),
        (Closed | Stopped, Close) => (&[], Closed),
        (Closing | Stopping, Close) => (&[], Closing),
        (ReqSent | AckRcvd | AckSent, Close) => (&[Irc, Str], Closing),
        (Opened, Close) => (&[Tld, Irc, Str], Closing),
        // TO+
        (Initial | Starting | Closed | Stopped | Opened, TimeoutRetry) => return None,
        (Closing, TimeoutRetry) => (&[Str], Closing),
        (Stopping, TimeoutRetry) => (&[Str], Stopping),
        (ReqSent | AckRcvd, TimeoutRetry) => (&[Scr], ReqSent),
        (AckSent, TimeoutRetry) => (&[Scr], AckSent),
        // TO-
        (Initial | Starting | Closed | Stopped | Opened, TimeoutGiveUp) => return None,
        (Closing, TimeoutGiveUp) => (&[Tlf], Closed),
        (Stopping | ReqSent | AckRcvd | AckSent, TimeoutGiveUp) => (&[Tlf], Stopped),
        // RCR+
        (Initial | Starting, GoodRequest) => return None,
        (Closed, GoodRequest) => (&[Sta], Closed),
        (Stopped, GoodRequest) => (&[Irc, Scr, Sca], AckSent),
        (Closing, GoodRequest) => (&[], Closing),
        (Stopping, GoodRequest) => (&[], Stopping),
        (ReqSent | AckSent, GoodRequest) => (&[Sca], AckSent),
        (AckRcvd, GoodRequest) => (&[Sca, Tlu], Opened),
        (Opened, GoodRequest) => (&[Tld, Scr, Sca], AckSent),
        // RCR-
        (Initial | Starting, BadRequest) => return None,
        (Closed, BadRequest) => (&[Sta], Closed),
        (Stopped, BadRequest) => (&[Irc, Scr, Scn], ReqSent),
        (Closing, BadRequest) => (&[], Closing),
        (Stopping, BadRequest) => (&[], Stopping),
        (ReqSent | AckSent, BadRequest) => (&[Scn], ReqSent),
        (AckRcvd, BadRequest) => (&[Scn], AckRcvd),
        (Opened, BadRequest) => (&[Tld, Scr, Scn], ReqSent),
        // RCA
        (Initial | Starting, Ack) => return None,
        (Closed, Ack) => (&[Sta], Closed),
        (Stopped, Ack) => (&[Sta], Stopped),
        (Closing, Ack) => (&[], Closing),
        (Stopping, Ack) => (&[], Stopping),
        (ReqSent, Ack) => (&[Irc], AckRcvd),
        (AckRcvd, Ack) => (&[Scr], ReqSent),
        (AckSent, Ack) => (&[Irc, Tlu], Opened),
        (Opened, Ack) => (&[Tld, Scr], ReqSent),
        // RCN
        (Initial | Starting, Nak) => return None,
        (Closed, Nak) => (&[Sta], Closed),
        (Stopped, Nak) => (&[Sta], Stopped),
        (Closing, Nak) => (&[], Closing),
        (Stopping, Nak) => (&[], Stopping),
        (ReqSent, Nak) => (&[Irc, Scr], ReqSent),
        (AckRcvd, Nak) => (&[Scr], ReqSent),
        (AckSent, Nak) => (&[Irc, Scr], AckSent),
        (Opened, Nak) => (&[Tld, Scr], ReqSent),
        // RTR
        (Initial | Starting, TermRequest) => return None,
        (Closed, TermRequest) => (&[Sta], Closed),
        (Stopped, TermRequest) => (&[Sta], Stopped),
        (Closing, TermRequest) => (&[Sta], Closing),
        (Stopping, TermRequest) => (&[Sta], Stopping),
        (ReqSent | AckRcvd | AckSent, TermRequest) => (&[Sta], ReqSent),
        (Opened, TermRequest) => (&[Tld, Zrc, Sta], Stopping),
        // RTA
        (Initial | Starting, TermAck) => return None,
        (Closed, TermAck) => (&[], Closed),
        (Stopped, TermAck) => (&[], Stopped),
        (Closing, TermAck) => (&[Tlf], Closed),
        (Stopping, TermAck) => (&[Tlf], Stopped),
        (ReqSent | AckRcvd, TermAck) => (&[], ReqSent),
        (AckSent, TermAck) => (&[], AckSent),
        (Opened, TermAck) => (&[Tld, Scr], ReqSent),
        // RUC
        (Initial | Starting, UnknownCode) => return None,
        (Closed, UnknownCode) => (&[Scj], Closed),
        (Stopped, UnknownCode) => (&[Scj], Stopped),
        (Closing, UnknownCode) => (&[Scj], Closing),
        (Stopping, UnknownCode) => (&[Scj], Stopping),
        (ReqSent, UnknownCode) => (&[Scj], ReqSent),
        (AckRcvd, UnknownCode) => (&[Scj], AckRcvd),
        (AckSent, UnknownCode) => (&[Scj], AckSent),
        (Opened, UnknownCode) => (&[Scj], Opened),
        // RXJ+
        (Initial | Starting, PermittedReject) => return None,
        (Closed, PermittedReject) => (&[], Closed),
        (Stopped, PermittedReject) => (&[], Stopped),
        (Closing, PermittedReject) => (&[], Closing),
        (Stopping, PermittedReject) => (&[], Stopping),
        (ReqSent | AckRcvd, PermittedReject) => (&[], ReqSent),
        (AckSent, PermittedReject) => (&[], AckSent),
        (Opened, PermittedReject) => (&[], Opened),
        // RXJ-
        (Initial | Starting, FatalReject) => return None,
        (Closed | Closing, FatalReject) => (&[Tlf], Closed),
        (Stopped | Stopping | ReqSent | AckRcvd | AckSent, FatalReject) => (&[Tlf], Stopped),
        (Opened, FatalReject) => (&[Tld, Irc, Str], Stopping),
        // RXR
        (Initial | Starting, EchoOrDiscard) => return None,
        (Closed, EchoOrDiscard) => (&[], Closed),
        (Stopped, EchoOrDiscard) => (&[], Stopped),
        (Closing, EchoOrDiscard) => (&[], Closing),
        (Stopping, EchoOrDiscard) => (&[], Stopping),
        (ReqSent, EchoOrDiscard) => (&[], ReqSent),
        (AckRcvd, EchoOrDiscard) => (&[], AckRcvd),
        (AckSent, EchoOrDiscard) => (&[], AckSent),
        (Opened, EchoOrDiscard) => (&[Ser], Opened),
    })
}

/// Timer and counters of RFC 1661 §4.6; `Default` gives the RFC's suggested values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Restart timer for Configure-Request and Terminate-Request (3 s).
    pub restart: Duration,
    /// Terminate-Requests sent without an Ack before giving up (2).
    pub max_terminate: u8,
    /// Configure-Requests sent without an answer before giving up (10).
    pub max_configure: u8,
    /// Configure-Naks sent without sending an Ack before Naks turn into Rejects (5).
    pub max_failure: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            restart: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
        }
    }
}

/// What the automaton tells the layer above (the `tl*` actions of RFC 1661 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// tlu: the protocol is open.
    Up,
    /// tld: the protocol left Opened.
    Down,
    /// tls: the protocol needs the lower layer.
    Started,
    /// tlf: the protocol no longer needs the lower layer.
    Finished,
}

/// The peer's Nak or Reject left nothing we can accept; the protocol closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unacceptable;

/// The verdict on a peer's Configure-Request, built option by option (RFC 1661 §5.2–5.4).
///
/// Any rejected option makes a Configure-Reject listing only rejected options; otherwise any
/// Nak'd option makes a Configure-Nak; otherwise the request is acknowledged verbatim.
#[derive(Debug, Default)]
pub struct Reply {
    naks: Vec<u8>,
    rejects: Vec<u8>,
    /// False once Max-Failure Naks were sent without an Ack: Naks become Rejects (RFC 1661 §4.6).
    naks_allowed: bool,
}

impl Reply {
    /// Rejects `raw` (the whole option as received).
    pub fn reject(&mut self, raw: &[u8]) {
        self.rejects.extend_from_slice(raw);
    }

    /// Naks the option `raw` and suggests `kind`/`data` instead.
    pub fn nak(&mut self, raw: &[u8], kind: u8, data: &[u8]) {
        if !self.naks_allowed {
            self.reject(raw);
            return;
        }
        let Ok(len) = u8::try_from(data.len() + 2) else {
            self.reject(raw);
            return;
        };
        self.naks.extend_from_slice(&[kind, len]);
        self.naks.extend_from_slice(data);
    }

    /// Asks the peer to include an option it left out, by Nak'ing it (RFC 1661 §5.3).
    pub fn nak_missing(&mut self, kind: u8, data: &[u8]) {
        if self.naks_allowed
            && let Ok(len) = u8::try_from(data.len() + 2)
        {
            self.naks.extend_from_slice(&[kind, len]);
            self.naks.extend_from_slice(data);
        }
    }

    fn clear(&mut self, naks_allowed: bool) {
        self.naks.clear();
        self.rejects.clear();
        self.naks_allowed = naks_allowed;
    }

    fn is_ack(&self) -> bool {
        self.naks.is_empty() && self.rejects.is_empty()
    }
}

/// What LCP, IPCP or IPV6CP contributes to negotiation (RFC 1661 §5.1–5.4).
pub trait Negotiator {
    /// The protocol number of this control protocol.
    const PROTOCOL: Protocol;

    /// Writes the options of our next Configure-Request.
    ///
    /// # Errors
    /// [`codec::NoSpace`] when they do not fit.
    fn write_request(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace>;

    /// Judges the peer's Configure-Request (already length-checked), filling `reply`.
    /// Called again for each new request; only an acknowledged request may take effect, so
    /// implementations record what they accept and commit it in [`Negotiator::commit_peer`].
    fn review(&mut self, request: Options<'_>, reply: &mut Reply);

    /// The last reviewed request was acknowledged.
    fn commit_peer(&mut self) {}

    /// Adjusts our request to the peer's Configure-Nak (RFC 1661 §5.3).
    ///
    /// # Errors
    /// [`Unacceptable`] when nothing the peer suggests can be accepted.
    fn apply_nak(&mut self, suggested: Options<'_>) -> Result<(), Unacceptable>;

    /// Drops the options the peer rejected from our request (RFC 1661 §5.4).
    ///
    /// # Errors
    /// [`Unacceptable`] when we cannot work without a rejected option.
    fn apply_reject(&mut self, rejected: Options<'_>) -> Result<(), Unacceptable>;

    /// Our request was acknowledged (`ack` is the request we sent).
    fn on_ack(&mut self) {}

    /// Negotiation starts afresh (on this-layer-started and after leaving Opened): forget what
    /// the peer asked for and reset our request to the configured starting point.
    fn reset(&mut self);
}

/// Why a protocol stopped negotiating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Max-Configure requests went unanswered, or Max-Terminate terminate requests.
    Timeout,
    /// The peer's Naks or Rejects left nothing acceptable.
    Unacceptable,
    /// The peer kept Nak'ing or Rejecting our requests.
    TooManyNaks,
    /// The peer Code-Rejected a code we need.
    CodeRejected,
}

/// One instance of the automaton for one control protocol.
#[derive(Debug)]
pub(crate) struct Fsm<N> {
    negotiator: N,
    config: Config,
    state: State,
    /// The restart counter of RFC 1661 §4.6.
    counter: u8,
    /// The restart timer: running exactly in Closing, Stopping, Req-Sent, Ack-Rcvd, Ack-Sent.
    deadline: Option<Instant>,
    /// Identifier of our outstanding Configure-Request and its options (an Ack must repeat
    /// them exactly, RFC 1661 §5.2).
    request_id: u8,
    request: Vec<u8>,
    /// Whether the outstanding request was already acknowledged: a duplicated Ack must not
    /// count as a second one (which the table would treat as a crossed connection).
    acked: bool,
    next_id: u8,
    /// Naks and Rejects received since our last Ack; more than Max-Configure ends negotiation.
    naks_received: u8,
    /// Naks sent since we last sent an Ack (for Max-Failure).
    naks_sent: u8,
    reply: Reply,
    /// The peer's request we acknowledged last (identifier and options).
    last_acked: Option<(u8, Vec<u8>)>,
    /// The packet being handled: its identifier (for sca/scn/sta) and bytes (for scj).
    rx_id: u8,
    rx_raw: Vec<u8>,
    rx_echo: Vec<u8>,
    /// Whether a Configure-Request of the peer arrived since negotiation (re)started.
    heard_request: bool,
    /// Data of our Terminate-Request.
    term_reason: &'static str,
    failure: Option<Failure>,
    magic: u32,
}

impl<N: Negotiator> Fsm<N> {
    /// A new automaton in the Initial state.
    pub(crate) fn new(negotiator: N, config: Config) -> Self {
        Self {
            negotiator,
            config,
            state: State::Initial,
            counter: 0,
            deadline: None,
            request_id: 0,
            request: Vec::new(),
            acked: false,
            next_id: 1,
            naks_received: 0,
            naks_sent: 0,
            reply: Reply::default(),
            last_acked: None,
            rx_id: 0,
            rx_raw: Vec::new(),
            rx_echo: Vec::new(),
            heard_request: false,
            term_reason: "",
            failure: None,
            magic: 0,
        }
    }

    /// The current state.
    pub(crate) const fn state(&self) -> State {
        self.state
    }

    /// The protocol judgement.
    pub(crate) const fn negotiator(&self) -> &N {
        &self.negotiator
    }

    /// Why negotiation last failed, if it did.
    pub(crate) const fn failure(&self) -> Option<Failure> {
        self.failure
    }

    /// Sets the magic number Echo-Replies carry (LCP only; RFC 1661 §5.8).
    pub(crate) const fn set_magic(&mut self, magic: u32) {
        self.magic = magic;
    }

    /// The restart timer's deadline.
    pub(crate) const fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Feeds an administrative or lower-layer event (Up, Down, Open).
    pub(crate) fn event(&mut self, now: Instant, event: Event, out: &mut Outbox) -> Option<Signal> {
        self.dispatch(now, event, out)
    }

    /// Close with a reason carried in the Terminate-Request.
    pub(crate) fn close(
        &mut self,
        now: Instant,
        reason: &'static str,
        out: &mut Outbox,
    ) -> Option<Signal> {
        self.term_reason = reason;
        self.dispatch(now, Event::Close, out)
    }

    /// Runs the restart timer if due (TO+ or TO-). Harmless when not due.
    pub(crate) fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) -> Option<Signal> {
        let deadline = self.deadline?;
        if now < deadline {
            return None;
        }
        self.deadline = None;
        if self.counter > 0 {
            self.dispatch(now, Event::TimeoutRetry, out)
        } else {
            self.failure = Some(Failure::Timeout);
            self.dispatch(now, Event::TimeoutGiveUp, out)
        }
    }

    /// Feeds a control packet of this protocol. Codes 8–11 are handled by the caller for LCP;
    /// here they count as unknown (RUC), as they are for IPCP and IPV6CP.
    pub(crate) fn handle_packet(
        &mut self,
        now: Instant,
        packet: &Packet<'_>,
        out: &mut Outbox,
    ) -> Option<Signal> {
        self.rx_id = packet.identifier;
        let event = match Code(packet.code) {
            Code::CONFIGURE_REQUEST => {
                let Ok(options) = Options::validate(packet.data) else {
                    // RFC 1661 §5: malformed packets are silently discarded.
                    return None;
                };
                // RFC 1661 §5.1: a peer that got our Ack must change the Identifier for its next
                // request, so the very request we acknowledged arriving again means our Ack was
                // lost. Acknowledge it again instead of tearing the open link down.
                if self.state == State::Opened
                    && self
                        .last_acked
                        .as_ref()
                        .is_some_and(|(id, data)| *id == packet.identifier && data == packet.data)
                {
                    self.send(out, Code::CONFIGURE_ACK, packet.identifier, packet.data);
                    return None;
                }
                // The peer's first request while ours is still unanswered: a peer that only
                // started listening after ours went out (xl2tpd starts pppd once the call is
                // up, and drops what arrives before) would otherwise wait a whole restart
                // period (3 s) for it. Repeat ours at once, before our reply, so a peer that
                // did get it sees a duplicate in Ack-Sent (harmless) rather than after opening.
                // (Not when the request is ours coming back on a looped-back line.)
                if !core::mem::replace(&mut self.heard_request, true)
                    && self.state == State::ReqSent
                    && !self.acked
                    && !self.request.is_empty()
                    && packet.data != self.request.as_slice()
                {
                    let (id, request) = (self.request_id, core::mem::take(&mut self.request));
                    self.send(out, Code::CONFIGURE_REQUEST, id, &request);
                    self.request = request;
                    self.deadline = Some(now + self.config.restart);
                }
                let naks_allowed = self.naks_sent < self.config.max_failure;
                self.reply.clear(naks_allowed);
                if matches!(
                    self.state,
                    State::Initial
                        | State::Starting
                        | State::Closed
                        | State::Closing
                        | State::Stopping
                ) {
                    // The request will not be reviewed (sta or no action); keep the peer's
                    // state untouched.
                } else {
                    self.negotiator.review(options, &mut self.reply);
                }
                self.rx_raw.clear();
                self.rx_raw.extend_from_slice(packet.data);
                if self.reply.is_ack() {
                    Event::GoodRequest
                } else {
                    Event::BadRequest
                }
            }
            Code::CONFIGURE_ACK => {
                // RFC 1661 §5.2: an Ack must match our last request's identifier and options.
                if packet.identifier != self.request_id
                    || packet.data != self.request.as_slice()
                    || self.acked
                {
                    return None;
                }
                self.acked = true;
                if matches!(self.state, State::ReqSent | State::AckSent) {
                    self.negotiator.on_ack();
                }
                Event::Ack
            }
            Code::CONFIGURE_NAK | Code::CONFIGURE_REJECT => {
                if packet.identifier != self.request_id {
                    return None;
                }
                let Ok(options) = Options::validate(packet.data) else {
                    return None;
                };
                if matches!(
                    self.state,
                    State::ReqSent | State::AckRcvd | State::AckSent | State::Opened
                ) {
                    let applied = if packet.code == Code::CONFIGURE_NAK.0 {
                        self.negotiator.apply_nak(options)
                    } else {
                        self.negotiator.apply_reject(options)
                    };
                    self.naks_received = self.naks_received.saturating_add(1);
                    let failure = match applied {
                        Err(Unacceptable) => Some(Failure::Unacceptable),
                        Ok(()) if self.naks_received > self.config.max_configure => {
                            Some(Failure::TooManyNaks)
                        }
                        Ok(()) => None,
                    };
                    if let Some(failure) = failure {
                        self.failure = Some(failure);
                        self.term_reason = "negotiation failed";
                        return self.dispatch(now, Event::Close, out);
                    }
                }
                Event::Nak
            }
            Code::TERMINATE_REQUEST => Event::TermRequest,
            Code::TERMINATE_ACK => Event::TermAck,
            Code::CODE_REJECT => {
                // RFC 1661 §5.6: a rejected code we cannot do without (1–7) is fatal; the
                // rejected packet follows the header.
                let rejected = packet.data.first().copied().unwrap_or(0);
                if (1..=7).contains(&rejected) {
                    self.failure = Some(Failure::CodeRejected);
                    Event::FatalReject
                } else {
                    Event::PermittedReject
                }
            }
            _ => {
                self.rx_raw.clear();
                self.rx_raw.extend_from_slice(packet.raw);
                Event::UnknownCode
            }
        };
        self.dispatch(now, event, out)
    }

    /// Feeds RXR (Echo-Request when `echo` holds its data, Echo-Reply or Discard-Request
    /// otherwise). Only LCP calls this.
    pub(crate) fn handle_echo_or_discard(
        &mut self,
        now: Instant,
        identifier: u8,
        echo: Option<&[u8]>,
        out: &mut Outbox,
    ) -> Option<Signal> {
        self.rx_id = identifier;
        self.rx_echo.clear();
        let is_request = echo.is_some();
        if let Some(data) = echo {
            self.rx_echo.extend_from_slice(data);
        }
        if !is_request {
            // Replies and discards are consumed by the caller; the table only matters for
            // Echo-Request (ser in Opened).
            return None;
        }
        self.dispatch(now, Event::EchoOrDiscard, out)
    }

    /// Feeds RXJ+ or RXJ- from a Protocol-Reject handled by the caller.
    pub(crate) fn handle_reject(
        &mut self,
        now: Instant,
        fatal: bool,
        out: &mut Outbox,
    ) -> Option<Signal> {
        let event = if fatal {
            Event::FatalReject
        } else {
            Event::PermittedReject
        };
        self.dispatch(now, event, out)
    }

    fn dispatch(&mut self, now: Instant, event: Event, out: &mut Outbox) -> Option<Signal> {
        let Some((actions, next)) = transition(self.state, event) else {
            tracing::debug!(protocol = ?N::PROTOCOL, state = ?self.state, ?event, "event cannot happen in this state; ignored");
            return None;
        };
        tracing::trace!(protocol = ?N::PROTOCOL, from = ?self.state, ?event, to = ?next, "transition");
        let mut signal = None;
        for (i, action) in actions.iter().enumerate() {
            match action {
                Action::Tlu => signal = Some(Signal::Up),
                Action::Tld => {
                    signal = Some(Signal::Down);
                    self.negotiator.reset();
                    self.heard_request = false;
                }
                Action::Tls => {
                    signal = Some(Signal::Started);
                    self.negotiator.reset();
                    self.failure = None;
                    self.heard_request = false;
                }
                Action::Tlf => {
                    signal = Some(Signal::Finished);
                    self.heard_request = false;
                }
                Action::Irc => {
                    let terminating = actions.get(i + 1) == Some(&Action::Str);
                    self.counter = if terminating {
                        self.config.max_terminate
                    } else {
                        self.config.max_configure
                    };
                }
                Action::Zrc => {
                    self.counter = 0;
                    self.deadline = Some(now + self.config.restart);
                }
                Action::Scr => self.send_configure_request(now, event == Event::TimeoutRetry, out),
                Action::Sca => self.send_configure_ack(out),
                Action::Scn => self.send_configure_nak(out),
                Action::Str => self.send_terminate_request(now, out),
                Action::Sta => self.send(out, Code::TERMINATE_ACK, self.rx_id, &[]),
                Action::Scj => self.send_code_reject(out),
                Action::Ser => self.send_echo_reply(out),
            }
        }
        self.state = next;
        if !matches!(
            next,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        ) {
            self.deadline = None;
        }
        if next == State::Opened {
            self.naks_received = 0;
        }
        signal
    }

    /// A fresh identifier for a packet the caller builds (Echo-Request, Protocol-Reject).
    pub(crate) const fn take_identifier(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn send(&mut self, out: &mut Outbox, code: Code, identifier: u8, data: &[u8]) {
        out.push(|buf| write_packet(buf, N::PROTOCOL, code.0, identifier, |w| w.put_slice(data)));
    }

    fn send_configure_request(&mut self, now: Instant, retransmission: bool, out: &mut Outbox) {
        self.counter = self.counter.saturating_sub(1);
        self.deadline = Some(now + self.config.restart);
        // RFC 1661 §5.1: a retransmission may keep its identifier; new options need a new one,
        // and so does a request after an Ack (its duplicates must stay recognisable).
        if !retransmission || self.request.is_empty() || self.acked {
            self.acked = false;
            self.request_id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            let mut scratch = [0u8; 256];
            let mut w = codec::Writer::new(&mut scratch);
            if self.negotiator.write_request(&mut w).is_err() {
                w.truncate(0);
            }
            self.request.clear();
            self.request.extend_from_slice(w.written());
        }
        let (id, request) = (self.request_id, core::mem::take(&mut self.request));
        self.send(out, Code::CONFIGURE_REQUEST, id, &request);
        self.request = request;
    }

    fn send_configure_ack(&mut self, out: &mut Outbox) {
        self.negotiator.commit_peer();
        self.naks_sent = 0;
        let data = core::mem::take(&mut self.rx_raw);
        self.send(out, Code::CONFIGURE_ACK, self.rx_id, &data);
        let mut acked = self.last_acked.take().map(|(_, v)| v).unwrap_or_default();
        acked.clear();
        acked.extend_from_slice(&data);
        self.last_acked = Some((self.rx_id, acked));
        self.rx_raw = data;
    }

    fn send_configure_nak(&mut self, out: &mut Outbox) {
        let reply = core::mem::take(&mut self.reply);
        if reply.rejects.is_empty() {
            self.naks_sent = self.naks_sent.saturating_add(1);
            self.send(out, Code::CONFIGURE_NAK, self.rx_id, &reply.naks);
        } else {
            self.send(out, Code::CONFIGURE_REJECT, self.rx_id, &reply.rejects);
        }
        self.reply = reply;
    }

    fn send_terminate_request(&mut self, now: Instant, out: &mut Outbox) {
        self.counter = self.counter.saturating_sub(1);
        self.deadline = Some(now + self.config.restart);
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let reason = self.term_reason.as_bytes();
        out.push(|buf| {
            write_packet(buf, N::PROTOCOL, Code::TERMINATE_REQUEST.0, id, |w| {
                w.put_slice(reason)
            })
        });
    }

    fn send_code_reject(&mut self, out: &mut Outbox) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        // RFC 1661 §5.6: quote the rejected packet, truncated to fit.
        let quoted = self.rx_raw.get(..1400).unwrap_or(&self.rx_raw);
        out.push(|buf| {
            write_packet(buf, N::PROTOCOL, Code::CODE_REJECT.0, id, |w| {
                w.put_slice(quoted)
            })
        });
    }

    fn send_echo_reply(&mut self, out: &mut Outbox) {
        // RFC 1661 §5.8: the reply carries our magic number and the request's data.
        let data = self.rx_echo.get(4..).unwrap_or(&[]);
        let data = data.get(..1400).unwrap_or(data);
        let magic = self.magic;
        out.push(|buf| {
            write_packet(buf, N::PROTOCOL, Code::ECHO_REPLY.0, self.rx_id, |w| {
                w.put_u32(magic)?;
                w.put_slice(data)
            })
        });
    }
}

/// Writes an option whose data is a big-endian number of `N` bytes.
pub(crate) fn write_be_option<const N: usize>(
    w: &mut codec::Writer<'_>,
    kind: u8,
    value: [u8; N],
) -> Result<(), codec::NoSpace> {
    write_option(w, kind, &value)
}

#[cfg(test)]
mod tests;
