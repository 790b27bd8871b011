//! One PPP link over one L2TP session: LCP, authentication, IPCP and IPV6CP (RFC 1661 §3).
//!
//! ```text
//!  Establish ──LCP up──▶ Authenticate ──verdict accept──▶ Network ──IPCP up──▶ (data flows)
//!      ▲                      │ reject / timeout              │
//!      └── LCP renegotiates ──┴──────────────▶ Terminate ──▶ Dead (Event::Down)
//! ```
//!
//! Drive it with [`Session::handle_frame`] and [`Session::handle_timeout`]; after each call
//! drain [`Session::poll_transmit`] and [`Session::poll_event`] and re-arm the timer from
//! [`Session::poll_timeout`]. Answer [`Event::AuthRequest`] with [`Session::auth_verdict`] and
//! (server) [`Event::AddressRequest`] with [`Session::assign_address`].

mod authn;
#[cfg(test)]
mod tests;

use crate::auth::{AuthRequest, Method, MppeKeys, NtHash, Password, Verdict};
use crate::fsm::{self, Event as FsmEvent, Fsm, Negotiator, Reply, Signal, State, Unacceptable};
use crate::ipcp::{Assignment, ClientIpcp, ClientWants, Ipv4Link, ServerIpcp};
use crate::ipv6cp::{Ipv6Link, Ipv6cp};
use crate::lcp::{DEFAULT_MRU, Lcp, LcpRole};
use crate::outbox::Outbox;
use crate::wire::{
    self, Code, Frame, HEADER_LEN, Options, Packet, Protocol, write_header, write_packet,
};
use authn::{ClientAuth, ServerAuth};
use rand_core::CryptoRng;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings both roles share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// The MRU we announce and enforce on received frames (default 1500).
    pub mru: u16,
    /// Restart timer and counters of RFC 1661 §4.6, for LCP, IPCP and IPV6CP.
    pub fsm: fsm::Config,
    /// Interval between LCP Echo-Requests once LCP is open; `None` disables keepalive.
    pub echo_interval: Option<Duration>,
    /// Unanswered Echo-Requests after which the link is declared dead.
    pub echo_failures: u8,
    /// Whether to run IPV6CP; when off, IPV6CP and IPv6 are Protocol-Rejected.
    pub ipv6: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            mru: DEFAULT_MRU,
            fsm: fsm::Config::default(),
            echo_interval: Some(Duration::from_secs(30)),
            echo_failures: 4,
            ipv6: false,
        }
    }
}

/// Settings of the authenticator (LNS) side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Link settings.
    pub link: LinkConfig,
    /// Methods we accept, most preferred first; the first is requested, a peer's Nak moves to
    /// the one it suggests if listed here, else to the next one.
    pub methods: Vec<Method>,
    /// Our name in CHAP challenges.
    pub name: String,
    /// How long the peer may take to authenticate once LCP is open.
    pub auth_timeout: Duration,
    /// Pause between a failure message and the LCP Terminate-Request (brute-force damping).
    pub failure_delay: Duration,
    /// CHAP re-challenge interval during the network phase (RFC 1994 §2.3); `None` for never.
    pub rechallenge: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            link: LinkConfig::default(),
            methods: Method::ALL.to_vec(),
            name: "l2sec".into(),
            auth_timeout: Duration::from_secs(30),
            failure_delay: Duration::from_secs(2),
            rechallenge: None,
        }
    }
}

/// Settings of the peer (client) side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Link settings.
    pub link: LinkConfig,
    /// Our user name.
    pub user: String,
    /// Our password.
    pub password: Password,
    /// Methods we are willing to use, preferred first (the first is what we Nak towards).
    pub methods: Vec<Method>,
    /// The address we ask for; `None` asks the server to choose (0.0.0.0).
    pub address: Option<Ipv4Addr>,
    /// Whether to ask for DNS servers (RFC 1877).
    pub request_dns: bool,
    /// How long the server may take to finish authentication once LCP is open.
    pub auth_timeout: Duration,
}

impl ClientConfig {
    /// A client with default settings for `user`/`password`.
    #[must_use]
    pub fn new(user: impl Into<String>, password: Password) -> Self {
        Self {
            link: LinkConfig::default(),
            user: user.into(),
            password,
            methods: Method::ALL.to_vec(),
            address: None,
            request_dns: true,
            auth_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the link went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// The user store rejected the peer (server), or the server rejected us (client).
    AuthFailed,
    /// The peer did not complete authentication in time.
    AuthTimeout,
    /// No authentication method both sides accept.
    NoCommonAuth,
    /// The server's MS-CHAP-V2 authenticator response was wrong: it does not know our password.
    ServerNotAuthenticated,
    /// The peer sent Terminate-Request.
    PeerTerminated,
    /// Echo-Requests went unanswered.
    EchoTimeout,
    /// Negotiation of the given control protocol failed.
    NegotiationFailed(Protocol),
    /// Our magic number kept coming back: the link is looped back.
    LoopedBack,
    /// The server had no address for the peer, or IPCP could not agree on one.
    NoAddress,
    /// [`Session::close`] was called.
    Closed,
    /// [`Session::lower_layer_down`] was called (the L2TP session is gone).
    LowerLayerDown,
}

impl DownReason {
    /// Text for the Terminate-Request.
    const fn text(self) -> &'static str {
        match self {
            Self::AuthFailed => "Authentication failed",
            Self::AuthTimeout => "Authentication timed out",
            Self::NoCommonAuth => "No acceptable authentication protocol",
            Self::ServerNotAuthenticated => "Server failed to authenticate itself",
            Self::PeerTerminated => "Peer terminated",
            Self::EchoTimeout => "Peer not responding",
            Self::NegotiationFailed(_) => "Negotiation failed",
            Self::LoopedBack => "Loopback detected",
            Self::NoAddress => "No address available",
            Self::Closed => "Administrative close",
            Self::LowerLayerDown => "Lower layer down",
        }
    }
}

/// What the session tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// LCP is open; authentication starts with `auth` (none if not negotiated).
    LinkEstablished {
        /// The negotiated authentication method.
        auth: Option<Method>,
        /// The largest information field the peer accepts.
        peer_mru: u16,
    },
    /// Server: may this peer log in? Answer with [`Session::auth_verdict`].
    AuthRequest(AuthRequest),
    /// Authentication succeeded (server: the user store accepted; client: the server accepted
    /// and, for MS-CHAP-V2, proved it knows our password).
    Authenticated {
        /// The user name.
        user: String,
        /// The method used.
        method: Method,
        /// MPPE keys of this side, for MS-CHAP-V2.
        mppe: Option<MppeKeys>,
    },
    /// Server: which address does this user get? Answer with [`Session::assign_address`] or
    /// [`Session::refuse_address`].
    AddressRequest {
        /// The authenticated user.
        user: String,
    },
    /// IPCP is open: IPv4 packets flow.
    Ipv4Up(Ipv4Link),
    /// IPCP left the Opened state (renegotiation or termination).
    Ipv4Down,
    /// IPV6CP is open: IPv6 packets flow.
    Ipv6Up(Ipv6Link),
    /// IPV6CP left the Opened state.
    Ipv6Down,
    /// The link is finished; the session accepts nothing more. Emitted once.
    Down(DownReason),
}

/// Phases of RFC 1661 §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// LCP negotiating.
    Establish,
    /// LCP open, authentication running.
    Authenticate,
    /// Authenticated; NCPs running.
    Network,
    /// LCP terminating.
    Terminate,
    /// Finished.
    Dead,
}

/// What a received frame turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A control frame, consumed by the session (drain the outputs).
    Control,
    /// An IPv4 packet for the IP stack, borrowed from the frame.
    Ipv4(&'a [u8]),
    /// An IPv6 packet for the IP stack, borrowed from the frame.
    Ipv6(&'a [u8]),
}

/// Why a frame was dropped. Nothing else changed apart from counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// The frame or control packet is malformed.
    #[error("malformed: {0}")]
    Malformed(#[from] wire::Error),
    /// The information field exceeds our MRU.
    #[error("{0} bytes exceed the MRU")]
    TooLong(usize),
    /// The protocol is not (yet) open in this phase.
    #[error("{0:?} is not open")]
    NotOpen(Protocol),
    /// An authentication packet that does not fit the exchange in progress.
    #[error("unexpected authentication packet")]
    UnexpectedAuth,
    /// The link is finished.
    #[error("link is down")]
    Dead,
    /// Not enough headroom before the packet for the PPP header.
    #[error("no headroom for the PPP header")]
    NoHeadroom,
}

/// Counters, for the driver's rate-limited summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to [`Session::handle_frame`].
    pub frames_in: u64,
    /// Frames dropped as malformed.
    pub malformed: u64,
    /// Frames dropped for exceeding our MRU.
    pub too_long: u64,
    /// Frames of a protocol not open in the current phase.
    pub not_open: u64,
    /// Protocol-Rejects sent.
    pub protocol_rejects: u64,
    /// Echo-Requests sent.
    pub echo_requests: u64,
    /// Control frames or events dropped at their queue bound.
    pub dropped_outputs: u64,
}

/// IPCP judgement for either role.
#[derive(Debug)]
enum Ipcp {
    Server(ServerIpcp),
    Client(ClientIpcp),
}

impl Ipcp {
    fn link(&self) -> Ipv4Link {
        match self {
            Self::Server(s) => s.link(),
            Self::Client(c) => c.link(),
        }
    }
}

impl Negotiator for Ipcp {
    const PROTOCOL: Protocol = Protocol::IPCP;

    fn write_request(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        match self {
            Self::Server(s) => s.write_request(w),
            Self::Client(c) => c.write_request(w),
        }
    }
    fn review(&mut self, request: Options<'_>, reply: &mut Reply) {
        match self {
            Self::Server(s) => s.review(request, reply),
            Self::Client(c) => c.review(request, reply),
        }
    }
    fn commit_peer(&mut self) {
        match self {
            Self::Server(s) => s.commit_peer(),
            Self::Client(c) => c.commit_peer(),
        }
    }
    fn apply_nak(&mut self, suggested: Options<'_>) -> Result<(), Unacceptable> {
        match self {
            Self::Server(s) => s.apply_nak(suggested),
            Self::Client(c) => c.apply_nak(suggested),
        }
    }
    fn apply_reject(&mut self, rejected: Options<'_>) -> Result<(), Unacceptable> {
        match self {
            Self::Server(s) => s.apply_reject(rejected),
            Self::Client(c) => c.apply_reject(rejected),
        }
    }
    fn reset(&mut self) {
        match self {
            Self::Server(s) => s.reset(),
            Self::Client(c) => c.reset(),
        }
    }
}

/// Role-specific state.
#[derive(Debug)]
enum RoleState {
    Server {
        config: Arc<ServerConfig>,
        auth: ServerAuth,
        /// The authenticated user, once accepted.
        user: Option<String>,
        /// Waiting for [`Session::assign_address`].
        awaiting_address: bool,
        assignment: Option<Assignment>,
        /// One IPCP Configure-Request that arrived before the address did, replayed then.
        early_ipcp: Vec<u8>,
    },
    Client {
        config: Arc<ClientConfig>,
        auth: ClientAuth,
        nt_hash: Option<NtHash>,
        /// Bounded by [`authn::MAX_ANSWERED`]; kept across LCP renegotiations.
        answered: Vec<authn::Answered>,
    },
}

/// At most this many events wait for the driver; more are dropped and counted.
const MAX_EVENTS: usize = 64;

/// One PPP link (one L2TP session), either role. See the module docs for the contract.
///
/// A session keeps no random generator of its own: the inputs that may need random bytes
/// (magic numbers, CHAP challenges and identifiers, the MS-CHAP-V2 peer challenge) take the
/// caller's `rng`, so that thousands of sessions share the owner's one generator.
#[derive(Debug)]
pub struct Session {
    role: RoleState,
    link: LinkConfig,
    phase: Phase,
    lcp: Fsm<Lcp>,
    ipcp: Option<Fsm<Ipcp>>,
    /// Boxed: off unless configured, and an automaton is a quarter kilobyte.
    ipv6cp: Option<Box<Fsm<Ipv6cp>>>,
    out: Outbox,
    /// Bounded by [`MAX_EVENTS`].
    events: VecDeque<Event>,
    stats: Stats,
    down_reason: Option<DownReason>,
    /// Next Echo-Request, and how many went unanswered.
    echo_at: Option<Instant>,
    echo_outstanding: u8,
    /// When a failed authentication turns into LCP termination.
    close_at: Option<Instant>,
    /// Server: when the next CHAP re-challenge goes out.
    rechallenge_at: Option<Instant>,
}

/// LCP reached the Opened state (This-Layer-Up, RFC 1661 §4.4): authentication starts, with
/// the method negotiated. What the inputs that can open LCP hand on to `start_auth`.
#[must_use]
struct LcpUp(Option<Method>);

impl Session {
    /// A server (authenticator) session whose lower layer is up: LCP starts at once.
    pub fn server(config: Arc<ServerConfig>, rng: &mut impl CryptoRng, now: Instant) -> Self {
        let link = config.link.clone();
        let role = RoleState::Server {
            auth: ServerAuth::Idle,
            user: None,
            awaiting_address: false,
            assignment: None,
            early_ipcp: Vec::new(),
            config: Arc::clone(&config),
        };
        Self::start(
            role,
            LcpRole::Server {
                methods: config.methods.clone(),
            },
            link,
            rng,
            now,
        )
    }

    /// A client (peer) session whose lower layer is up: LCP starts at once.
    pub fn client(config: Arc<ClientConfig>, rng: &mut impl CryptoRng, now: Instant) -> Self {
        let link = config.link.clone();
        let role = RoleState::Client {
            auth: ClientAuth::Idle,
            nt_hash: config.password.nt_hash(),
            answered: Vec::new(),
            config: Arc::clone(&config),
        };
        Self::start(
            role,
            LcpRole::Client {
                methods: config.methods.clone(),
            },
            link,
            rng,
            now,
        )
    }

    fn start(
        role: RoleState,
        lcp_role: LcpRole,
        link: LinkConfig,
        rng: &mut dyn CryptoRng,
        now: Instant,
    ) -> Self {
        let lcp = Fsm::new(Lcp::new(lcp_role, link.mru, rng.next_u64()), link.fsm);
        let mut session = Self {
            role,
            link,
            phase: Phase::Establish,
            lcp,
            ipcp: None,
            ipv6cp: None,
            out: Outbox::default(),
            events: VecDeque::new(),
            stats: Stats::default(),
            down_reason: None,
            echo_at: None,
            echo_outstanding: 0,
            close_at: None,
            rechallenge_at: None,
        };
        // RFC 1661 §3.2: L2TP delivers the session up, so the link is usable at once.
        session.lcp.event(now, FsmEvent::Open, &mut session.out);
        let signal = session.lcp.event(now, FsmEvent::Up, &mut session.out);
        if let Some(up) = session.on_lcp_signal(now, signal) {
            session.start_auth(now, rng, up.0);
        }
        session
    }

    /// The current phase.
    pub const fn phase(&self) -> Phase {
        self.phase
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            dropped_outputs: self.stats.dropped_outputs + self.out.dropped,
            ..self.stats
        }
    }

    /// Whether the link is finished.
    pub fn is_dead(&self) -> bool {
        self.phase == Phase::Dead
    }

    /// The IPv4 link, once IPCP is open.
    pub fn ipv4(&self) -> Option<Ipv4Link> {
        self.ipcp
            .as_ref()
            .filter(|f| f.state() == State::Opened)
            .map(|f| f.negotiator().link())
    }

    /// The IPv6 interface identifiers, once IPV6CP is open.
    pub fn ipv6(&self) -> Option<Ipv6Link> {
        self.ipv6cp
            .as_ref()
            .filter(|f| f.state() == State::Opened)
            .map(|f| f.negotiator().link())
    }

    /// The largest information field the peer accepts (its MRU).
    pub fn peer_mru(&self) -> u16 {
        self.lcp.negotiator().peer().mru
    }

    /// Writes the next control frame into `buf` (header `FF 03` + protocol included) and
    /// returns its length.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.out.pop_into(buf)
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() {
            // Events come in bursts (negotiation); an idle link keeps no room for them.
            self.events.shrink_to(0);
        }
        event
    }

    /// The earliest instant at which [`Session::handle_timeout`] must run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.lcp.poll_timeout(),
            self.ipcp.as_ref().and_then(Fsm::poll_timeout),
            self.ipv6cp.as_ref().and_then(|f| f.poll_timeout()),
            self.echo_at,
            self.close_at,
            self.rechallenge_at,
            self.auth_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`; `rng` for a CHAP re-challenge. Harmless when none is
    /// due.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut impl CryptoRng) {
        if self.phase == Phase::Dead {
            return;
        }
        let signal = self.lcp.handle_timeout(now, &mut self.out);
        if let Some(up) = self.on_lcp_signal(now, signal) {
            self.start_auth(now, rng, up.0);
        }
        if let Some(f) = self.ipcp.as_mut() {
            let signal = f.handle_timeout(now, &mut self.out);
            self.on_ipcp_signal(now, signal);
        }
        if let Some(f) = self.ipv6cp.as_mut() {
            let signal = f.handle_timeout(now, &mut self.out);
            self.on_ipv6cp_signal(now, signal);
        }
        if self.close_at.is_some_and(|at| at <= now) {
            self.close_at = None;
            self.terminate(now, DownReason::AuthFailed);
        }
        if self.echo_at.is_some_and(|at| at <= now) {
            self.on_echo_timer(now);
        }
        self.handle_auth_timeout(now, rng);
    }

    /// Closes the link administratively: LCP Terminate-Request, then [`Event::Down`].
    pub fn close(&mut self, now: Instant) {
        self.terminate(now, DownReason::Closed);
    }

    /// The lower layer (the L2TP session) is gone: no more frames go out; the link is finished.
    pub fn lower_layer_down(&mut self, now: Instant) {
        if self.phase == Phase::Dead {
            return;
        }
        self.down_reason.get_or_insert(DownReason::LowerLayerDown);
        let signal = self.lcp.event(now, FsmEvent::Down, &mut self.out);
        // Down never opens LCP (RFC 1661 §4.1): there is no authentication to start.
        let _: Option<LcpUp> = self.on_lcp_signal(now, signal);
        self.finish();
    }

    /// Feeds one PPP frame (the payload of an L2TP data message). `rng` gives the random
    /// bytes the frame's answer may need (a CHAP challenge when LCP opens, a magic number).
    ///
    /// # Errors
    /// [`Discard`] when the frame was dropped; nothing changed apart from counters.
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        rng: &mut impl CryptoRng,
        bytes: &'a [u8],
    ) -> Result<Received<'a>, Discard> {
        self.stats.frames_in += 1;
        if self.phase == Phase::Dead {
            return Err(Discard::Dead);
        }
        let frame = Frame::parse(bytes).inspect_err(|_| self.stats.malformed += 1)?;
        if frame.information.len() > usize::from(self.link.mru.max(DEFAULT_MRU)) {
            self.stats.too_long += 1;
            return Err(Discard::TooLong(frame.information.len()));
        }
        let result = self.dispatch_frame(now, rng, frame);
        match result {
            Err(Discard::Malformed(_)) => self.stats.malformed += 1,
            Err(Discard::NotOpen(_)) => self.stats.not_open += 1,
            _ => self.echo_outstanding = 0,
        }
        result
    }

    fn dispatch_frame<'a>(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        frame: Frame<'a>,
    ) -> Result<Received<'a>, Discard> {
        let lcp_open = self.lcp.state() == State::Opened;
        match frame.protocol {
            Protocol::LCP => self
                .on_lcp(now, rng, frame.information)
                .map(|()| Received::Control),
            Protocol::PAP | Protocol::CHAP if lcp_open => self
                .on_auth(now, rng, frame.protocol, frame.information)
                .map(|()| Received::Control),
            Protocol::IPCP if lcp_open => self
                .on_ipcp(now, frame.information)
                .map(|()| Received::Control),
            Protocol::IPV6CP if lcp_open && self.link.ipv6 => self
                .on_ipv6cp(now, frame.information)
                .map(|()| Received::Control),
            Protocol::IPV4 => match &self.ipcp {
                Some(f) if f.state() == State::Opened => Ok(Received::Ipv4(frame.information)),
                _ => Err(Discard::NotOpen(Protocol::IPV4)),
            },
            Protocol::IPV6 if self.link.ipv6 => match &self.ipv6cp {
                Some(f) if f.state() == State::Opened => Ok(Received::Ipv6(frame.information)),
                _ => Err(Discard::NotOpen(Protocol::IPV6)),
            },
            _ if lcp_open => {
                self.protocol_reject(frame);
                Ok(Received::Control)
            }
            protocol => Err(Discard::NotOpen(protocol)),
        }
    }

    /// RFC 1661 §5.7: an unsupported protocol is rejected, quoting the frame, only while LCP
    /// is open. CCP and ECP from Windows and macOS land here; the link carries on.
    fn protocol_reject(&mut self, frame: Frame<'_>) {
        self.stats.protocol_rejects += 1;
        let id = self.lcp.take_identifier();
        let info = frame.information;
        let max = usize::from(self.peer_mru()).saturating_sub(6);
        let quoted = info.get(..max).unwrap_or(info);
        tracing::debug!(protocol = ?frame.protocol, "protocol rejected");
        self.out.push(|buf| {
            write_packet(buf, Protocol::LCP, Code::PROTOCOL_REJECT.0, id, |w| {
                w.put_u16(frame.protocol.0)?;
                w.put_slice(quoted)
            })
        });
    }

    fn on_lcp(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRng,
        information: &[u8],
    ) -> Result<(), Discard> {
        let packet = Packet::parse(information)?;
        let opened = self.lcp.state() == State::Opened;
        let signal = match Code(packet.code) {
            Code::ECHO_REQUEST | Code::ECHO_REPLY | Code::DISCARD_REQUEST => {
                let magic = packet
                    .data
                    .get(..4)
                    .map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
                // RFC 1661 §5.8: our own magic number coming back means a looped-back link.
                let ours = self.lcp.negotiator().magic();
                if opened && ours != 0 && magic == Some(ours) {
                    self.terminate(now, DownReason::LoopedBack);
                    return Ok(());
                }
                let echo = (packet.code == Code::ECHO_REQUEST.0).then_some(packet.data);
                self.lcp.set_magic(ours);
                self.lcp
                    .handle_echo_or_discard(now, packet.identifier, echo, &mut self.out)
            }
            Code::PROTOCOL_REJECT => {
                if !opened {
                    return Ok(());
                }
                let Some(&[p0, p1]) = packet
                    .data
                    .get(..2)
                    .and_then(|p| <&[u8; 2]>::try_from(p).ok())
                else {
                    return Err(Discard::Malformed(wire::Error::Truncated));
                };
                self.on_protocol_rejected(now, Protocol(u16::from_be_bytes([p0, p1])));
                return Ok(());
            }
            _ => self.lcp.handle_packet(now, &packet, &mut self.out),
        };
        if self.lcp.negotiator().looped_back() {
            self.terminate(now, DownReason::LoopedBack);
        }
        if self.down_reason.is_none()
            && matches!(self.lcp.state(), State::Closing | State::Stopping)
        {
            // The automaton closed on its own (an unacceptable Nak or Reject, a fatal
            // Code-Reject): remember why before a Terminate-Request of the peer overwrites it.
            self.down_reason = self.lcp_failure_reason();
        }
        if packet.code == Code::TERMINATE_REQUEST.0 {
            self.down_reason.get_or_insert(DownReason::PeerTerminated);
        }
        if let Some(up) = self.on_lcp_signal(now, signal) {
            self.start_auth(now, rng, up.0);
        }
        Ok(())
    }

    /// Why LCP negotiation failed, if it did.
    fn lcp_failure_reason(&self) -> Option<DownReason> {
        let failure = self.lcp.failure()?;
        Some(if self.lcp.negotiator().loop_suspected() {
            DownReason::LoopedBack
        } else if failure == fsm::Failure::Unacceptable {
            // LCP only finds a Nak or Reject unacceptable over authentication.
            DownReason::NoCommonAuth
        } else {
            DownReason::NegotiationFailed(Protocol::LCP)
        })
    }

    fn on_protocol_rejected(&mut self, now: Instant, protocol: Protocol) {
        tracing::debug!(?protocol, "peer rejected protocol");
        match protocol {
            Protocol::LCP => {
                let signal = self.lcp.handle_reject(now, true, &mut self.out);
                self.down_reason
                    .get_or_insert(DownReason::NegotiationFailed(Protocol::LCP));
                // A rejected LCP (RXJ-) only closes it (RFC 1661 §4.1).
                let _: Option<LcpUp> = self.on_lcp_signal(now, signal);
            }
            Protocol::IPCP | Protocol::IPV4 => {
                if let Some(f) = self.ipcp.as_mut() {
                    let signal = f.handle_reject(now, true, &mut self.out);
                    self.on_ipcp_signal(now, signal);
                }
            }
            Protocol::IPV6CP | Protocol::IPV6 => {
                if let Some(f) = self.ipv6cp.as_mut() {
                    let signal = f.handle_reject(now, true, &mut self.out);
                    self.on_ipv6cp_signal(now, signal);
                }
            }
            Protocol::PAP | Protocol::CHAP => self.terminate(now, DownReason::NoCommonAuth),
            _ => {}
        }
    }

    fn on_ipcp(&mut self, now: Instant, information: &[u8]) -> Result<(), Discard> {
        let packet = Packet::parse(information)?;
        if self.phase != Phase::Network {
            return Err(Discard::NotOpen(Protocol::IPCP));
        }
        let Some(f) = self.ipcp.as_mut() else {
            // Server waiting for its address: keep the newest request for replay.
            if let RoleState::Server { early_ipcp, .. } = &mut self.role
                && packet.code == Code::CONFIGURE_REQUEST.0
            {
                early_ipcp.clear();
                early_ipcp.extend_from_slice(packet.raw);
                return Ok(());
            }
            return Err(Discard::NotOpen(Protocol::IPCP));
        };
        let signal = f.handle_packet(now, &packet, &mut self.out);
        self.on_ipcp_signal(now, signal);
        Ok(())
    }

    fn on_ipv6cp(&mut self, now: Instant, information: &[u8]) -> Result<(), Discard> {
        let packet = Packet::parse(information)?;
        let Some(f) = self
            .ipv6cp
            .as_mut()
            .filter(|_| self.phase == Phase::Network)
        else {
            return Err(Discard::NotOpen(Protocol::IPV6CP));
        };
        let signal = f.handle_packet(now, &packet, &mut self.out);
        self.on_ipv6cp_signal(now, signal);
        Ok(())
    }

    /// Acts on what LCP signalled; when it opened, the caller starts authentication with the
    /// method returned (and its `rng`).
    fn on_lcp_signal(&mut self, now: Instant, signal: Option<Signal>) -> Option<LcpUp> {
        match signal {
            None | Some(Signal::Started) => {}
            Some(Signal::Up) => {
                let auth = self.lcp.negotiator().auth_method();
                let peer_mru = self.peer_mru();
                tracing::debug!(?auth, peer_mru, "LCP open");
                self.emit(Event::LinkEstablished { auth, peer_mru });
                self.echo_outstanding = 0;
                self.echo_at = self.link.echo_interval.map(|i| now + i);
                self.phase = Phase::Authenticate;
                return Some(LcpUp(auth));
            }
            Some(Signal::Down) => {
                self.echo_at = None;
                self.stop_ncps(now);
                self.reset_auth();
                if self.phase != Phase::Terminate {
                    self.phase = Phase::Establish;
                }
            }
            Some(Signal::Finished) => {
                if self.down_reason.is_none() {
                    let reason = self
                        .lcp_failure_reason()
                        .unwrap_or(DownReason::PeerTerminated);
                    self.down_reason = Some(reason);
                }
                self.finish();
            }
        }
        None
    }

    fn on_ipcp_signal(&mut self, now: Instant, signal: Option<Signal>) {
        match signal {
            None | Some(Signal::Started) => {}
            Some(Signal::Up) => {
                if let Some(link) = self.ipv4() {
                    tracing::debug!(local = %link.local, peer = %link.peer, "IPCP open");
                    self.emit(Event::Ipv4Up(link));
                }
            }
            Some(Signal::Down) => self.emit(Event::Ipv4Down),
            Some(Signal::Finished) => {
                // Without IPv4 the link has no purpose (RFC 1661 §3.7 leaves this to us).
                if self.phase == Phase::Network {
                    self.terminate(now, DownReason::NoAddress);
                }
            }
        }
    }

    fn on_ipv6cp_signal(&mut self, _now: Instant, signal: Option<Signal>) {
        match signal {
            None | Some(Signal::Started | Signal::Finished) => {}
            Some(Signal::Up) => {
                if let Some(link) = self.ipv6() {
                    self.emit(Event::Ipv6Up(link));
                }
            }
            Some(Signal::Down) => self.emit(Event::Ipv6Down),
        }
    }

    /// Authentication done: the network phase starts its NCPs (the server first asks for an
    /// address).
    fn enter_network(&mut self, now: Instant, rng: &mut dyn CryptoRng) {
        self.phase = Phase::Network;
        if self.link.ipv6 {
            let mut f = Fsm::new(Ipv6cp::new(rng.next_u64()), self.link.fsm);
            f.event(now, FsmEvent::Open, &mut self.out);
            let signal = f.event(now, FsmEvent::Up, &mut self.out);
            self.ipv6cp = Some(Box::new(f));
            self.on_ipv6cp_signal(now, signal);
        }
        match &mut self.role {
            RoleState::Server {
                user,
                awaiting_address,
                assignment,
                ..
            } => {
                if let Some(a) = *assignment {
                    // LCP renegotiated after the address was assigned: keep it.
                    self.start_ipcp(now, Ipcp::Server(ServerIpcp::new(a)));
                } else {
                    *awaiting_address = true;
                    let user = user.clone().unwrap_or_default();
                    self.emit(Event::AddressRequest { user });
                }
            }
            RoleState::Client { config, .. } => {
                let wants = ClientWants {
                    address: config.address.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    dns: config.request_dns,
                };
                self.start_ipcp(now, Ipcp::Client(ClientIpcp::new(wants)));
            }
        }
    }

    fn start_ipcp(&mut self, now: Instant, negotiator: Ipcp) {
        let mut f = Fsm::new(negotiator, self.link.fsm);
        f.event(now, FsmEvent::Open, &mut self.out);
        let signal = f.event(now, FsmEvent::Up, &mut self.out);
        self.ipcp = Some(f);
        self.on_ipcp_signal(now, signal);
    }

    /// Server: the address for this peer (answer to [`Event::AddressRequest`]).
    pub fn assign_address(&mut self, now: Instant, assignment: Assignment) {
        let RoleState::Server {
            awaiting_address,
            assignment: slot,
            early_ipcp,
            ..
        } = &mut self.role
        else {
            return;
        };
        if !*awaiting_address || self.phase != Phase::Network {
            return;
        }
        *awaiting_address = false;
        *slot = Some(assignment);
        let early = core::mem::take(early_ipcp);
        self.start_ipcp(now, Ipcp::Server(ServerIpcp::new(assignment)));
        if !early.is_empty()
            && let (Ok(packet), Some(f)) = (Packet::parse(&early), self.ipcp.as_mut())
        {
            let signal = f.handle_packet(now, &packet, &mut self.out);
            self.on_ipcp_signal(now, signal);
        }
    }

    /// Server: no address for this peer; the link terminates.
    pub fn refuse_address(&mut self, now: Instant) {
        if let RoleState::Server {
            awaiting_address: true,
            ..
        } = self.role
        {
            self.terminate(now, DownReason::NoAddress);
        }
    }

    /// Server: the user store's answer to [`Event::AuthRequest`].
    pub fn auth_verdict(&mut self, now: Instant, rng: &mut impl CryptoRng, verdict: Verdict) {
        self.server_verdict(now, rng, verdict, None, None);
    }

    /// Server: as [`Session::auth_verdict`], with `message` (a RADIUS Reply-Message, say) in
    /// place of our own text in the PAP Ack/Nak, the CHAP Success/Failure, or the `M=` part of
    /// MS-CHAP-V2's (RFC 2759 §5, §6); cut to 200 octets at a character boundary.
    pub fn auth_verdict_with_message(
        &mut self,
        now: Instant,
        rng: &mut impl CryptoRng,
        verdict: Verdict,
        message: &str,
    ) {
        self.server_verdict(now, rng, verdict, Some(message), None);
    }

    /// Server: a refusal with the MS-CHAP-V2 error code `error` (RFC 2759 §6: 646 restricted
    /// logon hours, 647 account disabled, 648 password expired, 649 no dial-in permission, 691
    /// authentication failure) and an optional message; for other methods only the message
    /// counts. The Failure always says R=0: this link takes no second attempt.
    pub fn auth_reject_with_error(
        &mut self,
        now: Instant,
        rng: &mut impl CryptoRng,
        error: u32,
        message: Option<&str>,
    ) {
        self.server_verdict(now, rng, Verdict::Reject, message, Some(error));
    }

    fn stop_ncps(&mut self, now: Instant) {
        for f in self.ipcp.iter_mut() {
            if f.state() == State::Opened {
                self.events.push_back(Event::Ipv4Down);
            }
            f.event(now, FsmEvent::Down, &mut Outbox::default());
        }
        for f in self.ipv6cp.iter_mut() {
            if f.state() == State::Opened {
                self.events.push_back(Event::Ipv6Down);
            }
            f.event(now, FsmEvent::Down, &mut Outbox::default());
        }
        self.ipcp = None;
        self.ipv6cp = None;
        if let RoleState::Server {
            awaiting_address,
            early_ipcp,
            ..
        } = &mut self.role
        {
            *awaiting_address = false;
            early_ipcp.clear();
        }
    }

    /// Starts LCP termination for `reason` (kept if a reason was already recorded).
    fn terminate(&mut self, now: Instant, reason: DownReason) {
        if matches!(self.phase, Phase::Dead | Phase::Terminate) {
            return;
        }
        let reason = *self.down_reason.get_or_insert(reason);
        tracing::debug!(?reason, "terminating");
        self.stop_ncps(now);
        self.phase = Phase::Terminate;
        self.close_at = None;
        self.echo_at = None;
        self.rechallenge_at = None;
        self.reset_auth();
        let signal = self.lcp.close(now, reason.text(), &mut self.out);
        // Close never opens LCP (RFC 1661 §4.1).
        let _: Option<LcpUp> = self.on_lcp_signal(now, signal);
        if matches!(
            self.lcp.state(),
            State::Closed | State::Initial | State::Stopped
        ) {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if self.phase == Phase::Dead {
            return;
        }
        self.phase = Phase::Dead;
        self.stop_ncps_silently();
        self.echo_at = None;
        self.close_at = None;
        self.reset_auth();
        let reason = self.down_reason.unwrap_or(DownReason::PeerTerminated);
        tracing::debug!(?reason, "link down");
        self.emit(Event::Down(reason));
    }

    fn stop_ncps_silently(&mut self) {
        if self.ipcp.take().is_some_and(|f| f.state() == State::Opened) {
            self.emit(Event::Ipv4Down);
        }
        if self
            .ipv6cp
            .take()
            .is_some_and(|f| f.state() == State::Opened)
        {
            self.emit(Event::Ipv6Down);
        }
    }

    fn on_echo_timer(&mut self, now: Instant) {
        let Some(interval) = self
            .link
            .echo_interval
            .filter(|_| self.lcp.state() == State::Opened)
        else {
            self.echo_at = None;
            return;
        };
        if self.echo_outstanding >= self.link.echo_failures {
            // The peer stopped answering: one Terminate-Request as a courtesy, then down at
            // once. Waiting Max-Terminate restart periods for an Ack from a peer that is gone
            // would only hold its address longer.
            self.terminate(now, DownReason::EchoTimeout);
            let signal = self.lcp.event(now, FsmEvent::Down, &mut self.out);
            // Down never opens LCP (RFC 1661 §4.1).
            let _: Option<LcpUp> = self.on_lcp_signal(now, signal);
            self.finish();
            return;
        }
        self.echo_outstanding += 1;
        self.stats.echo_requests += 1;
        let id = self.lcp.take_identifier();
        let magic = self.lcp.negotiator().magic();
        self.out.push(|buf| {
            write_packet(buf, Protocol::LCP, Code::ECHO_REQUEST.0, id, |w| {
                w.put_u32(magic)
            })
        });
        self.echo_at = Some(now + interval);
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.stats.dropped_outputs += 1;
            return;
        }
        self.events.push_back(event);
    }

    /// Wraps an IP packet for sending: writes the 4-byte PPP header into the [`HEADER_LEN`]
    /// bytes before `packet` and returns the range of the whole frame. No copy, no allocation.
    ///
    /// # Errors
    /// [`Discard::NotOpen`] before IPCP (or IPV6CP) is open, [`Discard::TooLong`] for packets
    /// larger than the peer's MRU, [`Discard::NoHeadroom`] when `packet.start` < 4.
    pub fn encapsulate(
        &self,
        protocol: Protocol,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Result<Range<usize>, Discard> {
        let open = match protocol {
            Protocol::IPV4 => self
                .ipcp
                .as_ref()
                .is_some_and(|f| f.state() == State::Opened),
            Protocol::IPV6 => self
                .ipv6cp
                .as_ref()
                .is_some_and(|f| f.state() == State::Opened),
            _ => false,
        };
        if !open {
            return Err(Discard::NotOpen(protocol));
        }
        let len = packet
            .end
            .checked_sub(packet.start)
            .filter(|_| packet.end <= buf.len())
            .ok_or(Discard::NoHeadroom)?;
        if len > usize::from(self.peer_mru()) {
            return Err(Discard::TooLong(len));
        }
        let start = packet
            .start
            .checked_sub(HEADER_LEN)
            .ok_or(Discard::NoHeadroom)?;
        write_header(&mut buf[start..], protocol).map_err(|_| Discard::NoHeadroom)?;
        Ok(start..packet.end)
    }
}
