//! The client engine: one L2TP/IPsec connection to one server, as a sans-IO object
//! (STYLE.md §5). It is the counterpart of the server's `engine::ipsec`.
//!
//! ```text
//! UDP 500  ─ISAKMP──────────▶ ike::Endpoint (initiator) ─ChildSaUp─▶ esp::SaDb
//! UDP 4500 ─marker+ISAKMP───▶ ike::Endpoint
//! UDP 4500 ─ESP─┐
//! proto 50 ─ESP─┴▶ SaDb::open ─UDP/1701─▶ l2tp::Endpoint (LAC) ─PPP─▶ ppp::Session ─IPv4─▶ TUN
//! TUN ─IPv4─▶ PPP header ─▶ L2TP data header ─▶ UDP header ─▶ Sa::seal ─▶ proto 50 or UDP 4500
//! ```
//!
//! The stages come up in order, each started by the previous one: IKE Main Mode (and the float
//! to UDP 4500 when a NAT is detected, RFC 3947 §4), Quick Mode, the L2TP tunnel and call, PPP
//! (LCP, authentication, IPCP). Each is reported as a [`ClientEvent`]; a failure is reported
//! once as [`ClientEvent::Down`] naming the stage and the reason, after which the layers still
//! up are torn down politely (CDN, StopCCN, IKE Delete).
//!
//! Contract: feed [`Engine::handle_udp`], [`Engine::handle_esp`], [`Engine::handle_tun`] and
//! [`Engine::handle_timeout`]; after each, drain [`Engine::poll_transmit`] and
//! [`Engine::poll_event`], then re-arm one timer at [`Engine::poll_timeout`]. The engine reads
//! no clock, opens no socket and draws randomness only from the generator it is given.

mod nat;

use crate::profile::{AuthMethod, Profile};
use ike::endpoint::{Discard as IkeDiscard, DownReason as IkeDownReason, Endpoint as Ike};
use ike::endpoint::{Event as IkeEvent, Transmit as IkeTransmit};
use ike::esp::{Direction, IpProtocol, Sa, SaDb, Spi, Transform, Udp4500, classify_udp4500};
use ike::ikev1::main_mode::{NatState, Path, Refusal};
use ike::ikev1::phase2::Encapsulation;
use ike::ikev1::proposal::Phase1Suite;
use ike::wire::{Cookie, NotifyType};
use l2tp::wire::message::{CdnResult, StopCcnResult};
use l2tp::{DataPath, SessionDownReason, SessionId, TunnelDownReason, TunnelId};
use nat::NatObserver;
use ppp::auth::{Method, Password};
use ppp::wire::Protocol;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes needed before an IP packet handed to [`Engine::handle_tun`]: ESP header and IV (24),
/// UDP (8), L2TP data header (6), PPP (4), rounded up.
pub const HEADROOM: usize = 64;
/// Bytes needed after it: ESP padding, pad length, next header and ICV.
pub const TAILROOM: usize = 64;
/// Smallest buffer [`Engine::poll_transmit`] can always fill: the largest IKE message, or an
/// L2TP control message with [`HEADROOM`] and [`TAILROOM`].
pub const TRANSMIT_BUF_LEN: usize = 4096 + HEADROOM + TAILROOM;
/// The L2TP port (RFC 2661 §8.1), at both ends of the inner UDP header.
const L2TP_PORT: u16 = 1701;
/// The NAT-T port (RFC 3948 §2).
const NAT_T_PORT: u16 = 4500;
/// Length of the inner UDP header.
const UDP_HEADER_LEN: usize = 8;
/// Child SA pairs kept at once (the server may rekey; older pairs stay until deleted).
const MAX_CHILDREN: usize = 4;
/// Events waiting for [`Engine::poll_event`]; a connection emits at most seven.
const MAX_EVENTS: usize = 16;

/// Everything one connection needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The server's IKE address (port 500).
    pub server: SocketAddr,
    /// Our IKE address (port 500); port 4500 of the same address is used after a NAT float.
    pub local: SocketAddr,
    /// IKE settings, including the pre-shared key ([`ike::endpoint::Config::new`]).
    pub ike: ike::endpoint::Config,
    /// L2TP settings.
    pub l2tp: Arc<l2tp::Config>,
    /// PPP settings, including user name, password and accepted methods.
    pub ppp: Arc<ppp::ClientConfig>,
    /// NAT keepalive (RFC 3948 §2.3) after this much send-idleness on UDP 4500; `None`
    /// disables.
    pub keepalive: Option<Duration>,
    /// The connection must be up (address assigned) within this time of [`Engine::new`].
    pub connect_timeout: Duration,
    /// The moment each teardown step is given (PPP terminate, CDN, StopCCN) before the next.
    pub teardown_step: Duration,
}

impl EngineConfig {
    /// Defaults around the server, our address and the credentials.
    #[must_use]
    pub fn new(
        server: SocketAddr,
        local: SocketAddr,
        psk: &[u8],
        user: impl Into<String>,
        password: Password,
    ) -> Self {
        Self {
            server,
            local,
            ike: ike::endpoint::Config::new(psk),
            l2tp: Arc::new(l2tp::Config::default()),
            ppp: Arc::new(ppp::ClientConfig::new(user, password)),
            keepalive: Some(Duration::from_secs(20)),
            connect_timeout: Duration::from_secs(120),
            teardown_step: Duration::from_secs(1),
        }
    }

    /// The configuration for a [`Profile`] whose server name the driver resolved to `server`.
    #[must_use]
    pub fn from_profile(profile: &Profile, server: SocketAddr, local: SocketAddr) -> Self {
        let mut config = Self::new(
            server,
            local,
            profile.psk.as_bytes(),
            profile.user.clone(),
            Password::new(profile.password.as_bytes()),
        );
        let mut ppp = ppp::ClientConfig::new(
            profile.user.clone(),
            Password::new(profile.password.as_bytes()),
        );
        ppp.methods = profile
            .auth
            .iter()
            .map(|m| match m {
                AuthMethod::MsChapV2 => Method::MsChapV2,
                AuthMethod::ChapMd5 => Method::ChapMd5,
                AuthMethod::Pap => Method::Pap,
            })
            .collect();
        // Always asked for (status shows them); applied to the system only when the profile
        // says so (the driver's business).
        ppp.request_dns = true;
        config.ppp = Arc::new(ppp);
        // The connect timeout bounds the whole connection; IKE's own exchange timeout (60 s)
        // reports a more precise reason when it fires first.
        config.connect_timeout = profile.connect_timeout;
        if !profile.ike.is_empty() {
            config.ike.phase1.policy.suites.clone_from(&profile.ike);
        }
        if !profile.esp.is_empty() {
            config.ike.phase2.transforms.clone_from(&profile.esp);
        }
        config
    }
}

/// How a datagram leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Over UDP: IKE on 500 or 4500, UDP-encapsulated ESP or a NAT keepalive on 4500.
    Udp {
        /// Our address and port.
        local: SocketAddr,
        /// Destination.
        remote: SocketAddr,
        /// Prefix the 4-byte non-ESP marker (IKE on port 4500, RFC 3948 §2.2).
        non_esp_marker: bool,
    },
    /// As an IP protocol 50 packet.
    Esp {
        /// Destination.
        remote: IpAddr,
    },
}

/// A datagram to send: where, and which bytes of the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// Route.
    pub route: Route,
    /// The bytes to send.
    pub range: Range<usize>,
}

/// The layer a [`ClientEvent::Down`] concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// IKE Main Mode (the ISAKMP SA).
    Ike,
    /// Quick Mode and the ESP SAs.
    Ipsec,
    /// The L2TP tunnel and call.
    L2tp,
    /// PPP: LCP, authentication, IPCP.
    Ppp,
    /// [`Engine::disconnect`] finished tearing everything down.
    Disconnected,
}

/// Why the connection went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// The server never answered: unreachable, filtered, or no IKE there.
    ServerUnreachable,
    /// The server answered the key exchange but not our authentication (Main Mode message 5):
    /// almost always a wrong pre-shared key.
    NoAuthenticationReply,
    /// IKE refused: a notify from the server (NO-PROPOSAL-CHOSEN) or our own check of its
    /// answer (AUTHENTICATION-FAILED when its hash does not verify).
    Refused(Refusal),
    /// The stage did not complete in time.
    Timeout,
    /// The ISAKMP SA ended (dead peer, deleted by the server, expired).
    Ike(IkeDownReason),
    /// The server deleted our ESP SAs and no pair is left.
    EspDeleted,
    /// The L2TP tunnel went down.
    Tunnel(TunnelDownReason),
    /// The L2TP call went down.
    Session(SessionDownReason),
    /// PPP went down: `AuthFailed` for a wrong password, `NoAddress` when the server has none.
    ///
    /// `NoAddress` is inferred: `ppp` does not surface the text of the server's
    /// Terminate-Request, so a server that ends the link (Terminate-Request or CDN) after
    /// accepting our credentials and before IPCP opened is reported as having no address.
    Ppp(ppp::DownReason),
    /// A layer could not be started (a limit or an SA that could not be built).
    Internal,
    /// [`Engine::disconnect`] was called.
    Requested,
}

/// What a user sees of the connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Main Mode completed.
    IkeUp {
        /// The phase-1 suite the server chose, when its answer could be read.
        suite: Option<Phase1Suite>,
        /// NAT detection.
        nat: NatState,
    },
    /// ESP SAs are installed.
    IpsecUp {
        /// ESP runs inside UDP 4500 (a NAT was detected).
        encapsulated: bool,
        /// The ESP cipher and integrity.
        transform: Transform,
    },
    /// The L2TP tunnel and call are established.
    L2tpUp,
    /// The server accepted our credentials.
    Authenticated {
        /// The PPP authentication method used.
        method: Method,
    },
    /// IPCP is open: packets flow.
    AddressAssigned {
        /// Our address.
        local: Ipv4Addr,
        /// The server's end of the link.
        peer: Ipv4Addr,
        /// DNS servers offered.
        dns: [Option<Ipv4Addr>; 2],
    },
    /// The connection is down (emitted once).
    Down {
        /// Which stage failed, or [`Stage::Disconnected`] after [`Engine::disconnect`].
        stage: Stage,
        /// Why.
        reason: DownReason,
    },
}

/// Why an input was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Drop {
    /// Not from the server.
    #[error("not from the server")]
    UnknownPeer,
    /// An ISAKMP message that is not for our exchange (other cookies, or one that would make
    /// us a responder).
    #[error("IKE message not for our exchange")]
    NotOurs,
    /// IKE refused it.
    #[error("IKE: {0}")]
    Ike(IkeDiscard),
    /// A UDP-4500 datagram that is neither IKE, ESP nor a keepalive.
    #[error("malformed UDP-4500 datagram")]
    Malformed,
    /// A NAT keepalive (not an error; nothing to do).
    #[error("keepalive")]
    Keepalive,
    /// ESP refused it.
    #[error("ESP: {0}")]
    Esp(ike::esp::Discard),
    /// The ESP payload is not UDP from and to port 1701.
    #[error("not L2TP inside ESP")]
    NotL2tp,
    /// L2TP refused it.
    #[error("L2TP: {0}")]
    L2tp(l2tp::Discard),
    /// PPP refused it.
    #[error("PPP: {0}")]
    Ppp(ppp::session::Discard),
    /// A data message for no call of ours.
    #[error("no PPP session")]
    NoSession,
    /// Not an IPv4 packet (only IPCP is run).
    #[error("not IPv4")]
    NotIpv4,
    /// The link is not up (no address yet, or going down).
    #[error("not connected")]
    NotConnected,
    /// No ESP SA to seal with.
    #[error("no SA")]
    NoSa,
    /// No room for the headers.
    #[error("no room")]
    NoRoom,
}

#[derive(Debug, Clone, Copy)]
struct Child {
    inbound: u32,
    outbound: u32,
    encapsulated: bool,
}

/// Where teardown stands: each step is given [`EngineConfig::teardown_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// LCP Terminate-Request sent; waiting for the link to finish.
    Ppp,
    /// CDN sent.
    Session,
    /// StopCCN sent.
    Tunnel,
}

#[derive(Debug, Clone, Copy)]
struct Teardown {
    step: Step,
    until: Instant,
    /// Emit `Down { Disconnected }` at the end (a user request, not a failure already told).
    requested: bool,
}

/// Where the IKE endpoint was called from, to tell its `Refused` events apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Datagram,
    Timer,
}

/// The client engine. See the module docs for the contract.
#[derive(Debug)]
pub struct Engine<R> {
    server: SocketAddr,
    local: SocketAddr,
    keepalive: Option<Duration>,
    teardown_step: Duration,
    ike: Ike<ChaCha20Rng>,
    /// The Main Mode exchange we started (our initiator cookie).
    cky_i: Cookie,
    /// The ISAKMP SA once established.
    cookies: Option<(Cookie, Cookie)>,
    /// Server messages of our Main Mode accepted before it completed (message 2, 4, repeats).
    replies: u8,
    nat: NatObserver,
    sadb: SaDb,
    /// Bounded by [`MAX_CHILDREN`]; the last is the one we send on.
    children: Vec<Child>,
    l2tp: l2tp::Endpoint<ChaCha20Rng>,
    ppp_config: Arc<ppp::ClientConfig>,
    call: Option<(TunnelId, SessionId)>,
    data: Option<DataPath>,
    ppp: Option<ppp::Session>,
    /// The server accepted our credentials.
    authenticated: bool,
    up: bool,
    connect_deadline: Option<Instant>,
    teardown: Option<Teardown>,
    /// Down was reported (a failure or the end of a disconnect).
    reported: bool,
    /// Nothing left to do: no timers, only queued output drains.
    finished: bool,
    /// The latest `now` seen; stamps sends from [`Engine::handle_tun`], which takes none.
    last_now: Instant,
    /// Last datagram sent to UDP 4500, for the keepalive.
    last_udp_send: Instant,
    keepalive_due: bool,
    events: VecDeque<ClientEvent>,
    rng: R,
}

impl<R: CryptoRng> Engine<R> {
    /// Starts IKE Main Mode towards the server.
    pub fn new(config: EngineConfig, mut rng: R, now: Instant) -> Self {
        let mut ike = Ike::new(config.ike, ChaCha20Rng::from_rng(&mut rng));
        let path = Path {
            local: config.local,
            remote: config.server,
        };
        let started = ike.connect(now, path);
        let l2tp = l2tp::Endpoint::new(config.l2tp, ChaCha20Rng::from_rng(&mut rng));
        let mut engine = Self {
            server: config.server,
            local: config.local,
            keepalive: config.keepalive,
            teardown_step: config.teardown_step,
            ike,
            cky_i: Cookie::default(),
            cookies: None,
            replies: 0,
            nat: NatObserver::default(),
            sadb: SaDb::new(2 * MAX_CHILDREN),
            children: Vec::new(),
            l2tp,
            ppp_config: config.ppp,
            call: None,
            data: None,
            ppp: None,
            authenticated: false,
            up: false,
            connect_deadline: Some(now + config.connect_timeout),
            teardown: None,
            reported: false,
            finished: false,
            last_now: now,
            last_udp_send: now,
            keepalive_due: false,
            events: VecDeque::new(),
            rng,
        };
        match started {
            Ok((cky_i, _)) => engine.cky_i = cky_i,
            Err(_) => engine.fail(now, Stage::Ike, DownReason::Internal),
        }
        engine
    }

    /// Whether the connection is fully up (an address is assigned and not yet going down).
    pub const fn is_up(&self) -> bool {
        self.up && !self.reported && self.teardown.is_none()
    }

    /// Whether the engine has nothing left to do (after [`ClientEvent::Down`] and teardown).
    pub const fn is_finished(&self) -> bool {
        self.finished
    }

    /// The IPv4 link, once IPCP is open.
    pub fn ipv4(&self) -> Option<ppp::ipcp::Ipv4Link> {
        self.ppp.as_ref().and_then(ppp::Session::ipv4)
    }

    /// Whether ESP (and IKE) run inside UDP 4500.
    pub fn encapsulated(&self) -> bool {
        self.children.last().is_some_and(|c| c.encapsulated)
    }

    /// Installed ESP SA pairs.
    pub fn child_sas(&self) -> usize {
        self.children.len()
    }

    /// Where IKE goes: port 4500 with the non-ESP marker once floated.
    fn ike_route(&self, t: &IkeTransmit) -> Route {
        if self.nat.must_float() {
            Route::Udp {
                local: SocketAddr::new(self.local.ip(), NAT_T_PORT),
                remote: SocketAddr::new(self.server.ip(), NAT_T_PORT),
                non_esp_marker: true,
            }
        } else {
            Route::Udp {
                local: t.local,
                remote: t.remote,
                non_esp_marker: t.non_esp_marker,
            }
        }
    }

    fn udp_4500(&self) -> Route {
        Route::Udp {
            local: SocketAddr::new(self.local.ip(), NAT_T_PORT),
            remote: SocketAddr::new(self.server.ip(), NAT_T_PORT),
            non_esp_marker: false,
        }
    }

    /// A UDP datagram arrived on `local` from `remote` (ports 500 and 4500). An IP packet for
    /// TUN comes back as a range of `buf`.
    ///
    /// # Errors
    /// [`Drop`].
    pub fn handle_udp(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        buf: &mut [u8],
    ) -> Result<Option<Range<usize>>, Drop> {
        self.last_now = now;
        if remote.ip() != self.server.ip() {
            return Err(Drop::UnknownPeer);
        }
        if local.port() == NAT_T_PORT {
            match classify_udp4500(buf).map_err(|_| Drop::Malformed)? {
                Udp4500::NatKeepalive => Err(Drop::Keepalive),
                Udp4500::Ike => {
                    let message = buf.get(Udp4500::Ike.offset()..).ok_or(Drop::Malformed)?;
                    self.ike_in(now, message).map(|()| None)
                }
                Udp4500::Esp => self.esp_in(now, buf),
            }
        } else {
            self.ike_in(now, buf).map(|()| None)
        }
    }

    /// An IP protocol 50 packet arrived from `remote` (the payload after the IP header).
    ///
    /// # Errors
    /// [`Drop`].
    pub fn handle_esp(
        &mut self,
        now: Instant,
        remote: IpAddr,
        packet: &mut [u8],
    ) -> Result<Option<Range<usize>>, Drop> {
        self.last_now = now;
        if remote != self.server.ip() {
            return Err(Drop::UnknownPeer);
        }
        self.esp_in(now, packet)
    }

    fn ike_in(&mut self, now: Instant, message: &[u8]) -> Result<(), Drop> {
        if self.finished {
            return Err(Drop::NotOurs);
        }
        // Only our own exchanges get through: the first one, our phase-1 rekeys, and once
        // connected a phase-1 rekey the server starts.
        let (cky_i, cky_r) = nat::cookies(message).ok_or(Drop::Ike(IkeDiscard::Malformed))?;
        let servers_rekey = cky_r.is_zero() && cky_i != self.cky_i && self.cookies.is_some();
        if cky_i != self.cky_i && !servers_rekey && !self.ike.knows((cky_i, cky_r)) {
            return Err(Drop::NotOurs);
        }
        if cky_r.is_zero() && !servers_rekey {
            // RFC 2408 §5.2: a refusal of message 1 comes in the clear, with our cookie.
            if self.cookies.is_none()
                && nat::clear_notify(message) == Some(NotifyType::NO_PROPOSAL_CHOSEN)
            {
                self.fail(
                    now,
                    Stage::Ike,
                    DownReason::Refused(Refusal::NoProposalChosen),
                );
                return Ok(());
            }
            return Err(Drop::NotOurs);
        }
        if self.cookies.is_none() {
            self.nat.observe(message, self.local, self.server);
        }
        // The endpoint keeps the path it started on; the float is ours (see `nat`).
        let path = Path {
            local: self.local,
            remote: self.server,
        };
        let result = self.ike.handle_datagram(now, path, message);
        if result.is_ok() && self.cookies.is_none() {
            self.replies = self.replies.saturating_add(1);
        }
        self.pump(now, Context::Datagram);
        self.advance_teardown(now);
        result.map_err(Drop::Ike)
    }

    fn esp_in(&mut self, now: Instant, packet: &mut [u8]) -> Result<Option<Range<usize>>, Drop> {
        let (spi, opened) = self.sadb.open(packet).map_err(Drop::Esp)?;
        if !self.children.iter().any(|c| c.inbound == spi.0) {
            return Err(Drop::NoSa);
        }
        if opened.next_header != IpProtocol(17) {
            return Err(Drop::NotL2tp);
        }
        let udp = opened.payload;
        let header = packet
            .get(udp.start..udp.start + UDP_HEADER_LEN)
            .ok_or(Drop::NotL2tp)?;
        let (src_port, dst_port) = (
            u16::from_be_bytes([header[0], header[1]]),
            u16::from_be_bytes([header[2], header[3]]),
        );
        if src_port != L2TP_PORT || dst_port != L2TP_PORT {
            return Err(Drop::NotL2tp);
        }
        let l2tp = udp.start + UDP_HEADER_LEN..udp.end;
        let datagram = packet.get_mut(l2tp.clone()).ok_or(Drop::NotL2tp)?;
        let peer = SocketAddr::new(self.server.ip(), L2TP_PORT);
        let received = self.l2tp.handle_datagram(now, peer, datagram);
        let result = match received {
            Ok(l2tp::Received::Data(d)) => self
                .frame_in(now, datagram, &d)
                .map(|r| r.map(|r| r.start + l2tp.start..r.end + l2tp.start)),
            Ok(l2tp::Received::Control) => Ok(None),
            Err(e) => Err(Drop::L2tp(e)),
        };
        self.pump(now, Context::Datagram);
        self.advance_teardown(now);
        result
    }

    /// A PPP frame of our call; an IPv4 packet comes back as a range of `datagram`.
    fn frame_in(
        &mut self,
        now: Instant,
        datagram: &[u8],
        d: &l2tp::DataMessage,
    ) -> Result<Option<Range<usize>>, Drop> {
        if self.call != Some((d.tunnel, d.session)) {
            return Err(Drop::NoSession);
        }
        let ppp = self.ppp.as_mut().ok_or(Drop::NoSession)?;
        let frame = datagram.get(d.frame.clone()).ok_or(Drop::NoSession)?;
        match ppp
            .handle_frame(now, &mut self.rng, frame)
            .map_err(Drop::Ppp)?
        {
            ppp::Received::Ipv4(ip) => {
                // The packet is the tail of the frame: its offset is where it starts in it.
                let offset = d.frame.start + (ip.as_ptr().addr() - frame.as_ptr().addr());
                Ok(Some(offset..offset + ip.len()))
            }
            ppp::Received::Ipv6(_) => Err(Drop::NotIpv4),
            ppp::Received::Control => Ok(None),
        }
    }

    /// Takes an IPv4 packet from TUN at `buf[packet]` ([`HEADROOM`] bytes before, [`TAILROOM`]
    /// after) and seals it for the server in place.
    ///
    /// # Errors
    /// [`Drop::NotConnected`] before an address is assigned; [`Drop::NotIpv4`]; PPP's
    /// refusal (too long); [`Drop::NoSa`], [`Drop::NoRoom`].
    pub fn handle_tun(&mut self, buf: &mut [u8], packet: Range<usize>) -> Result<Out, Drop> {
        if self.reported || self.teardown.is_some() {
            return Err(Drop::NotConnected);
        }
        let first = buf.get(packet.start).ok_or(Drop::NoRoom)?;
        if first >> 4 != 4 {
            return Err(Drop::NotIpv4);
        }
        let (Some(ppp), Some(data)) = (self.ppp.as_ref(), self.data) else {
            return Err(Drop::NotConnected);
        };
        if ppp.ipv4().is_none() {
            return Err(Drop::NotConnected);
        }
        let frame = ppp
            .encapsulate(Protocol::IPV4, buf, packet)
            .map_err(Drop::Ppp)?;
        let l2tp = data.encapsulate(buf, frame).map_err(|_| Drop::NoRoom)?;
        self.seal(buf, l2tp)
    }

    /// Wraps the inner L2TP datagram at `buf[l2tp]` in UDP (1701 → 1701) and ESP.
    fn seal(&mut self, buf: &mut [u8], l2tp: Range<usize>) -> Result<Out, Drop> {
        let child = *self.children.last().ok_or(Drop::NoSa)?;
        let start = l2tp.start.checked_sub(UDP_HEADER_LEN).ok_or(Drop::NoRoom)?;
        let len = u16::try_from(l2tp.len() + UDP_HEADER_LEN).map_err(|_| Drop::NoRoom)?;
        let header = buf.get_mut(start..l2tp.start).ok_or(Drop::NoRoom)?;
        // RFC 768: a zero checksum means none; ESP protects the datagram already, and behind
        // a NAT the checksum would need the original addresses (RFC 3948 §3.1.2).
        header[0..2].copy_from_slice(&L2TP_PORT.to_be_bytes());
        header[2..4].copy_from_slice(&L2TP_PORT.to_be_bytes());
        header[4..6].copy_from_slice(&len.to_be_bytes());
        header[6..8].copy_from_slice(&[0, 0]);
        let sa = self
            .sadb
            .outbound_mut(Spi(child.outbound))
            .ok_or(Drop::NoSa)?;
        let range = sa
            .seal(buf, start..l2tp.end, IpProtocol(17), &mut self.rng)
            .map_err(|_| Drop::NoRoom)?;
        let route = if child.encapsulated {
            self.last_udp_send = self.last_now;
            self.udp_4500()
        } else {
            Route::Esp {
                remote: self.server.ip(),
            }
        };
        Ok(Out { route, range })
    }

    /// Writes the next datagram (IKE, L2TP or PPP control sealed in ESP, or a NAT keepalive)
    /// into `buf`, which should hold [`TRANSMIT_BUF_LEN`] bytes.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Out> {
        self.last_now = now;
        if let Some(t) = self.ike.poll_transmit(buf) {
            let route = self.ike_route(&t);
            if matches!(route, Route::Udp { local, .. } if local.port() == NAT_T_PORT) {
                self.last_udp_send = now;
            }
            return Some(Out {
                route,
                range: 0..t.len,
            });
        }
        if self.finished {
            return None;
        }
        let end = buf.len().saturating_sub(TAILROOM);
        // L2TP control; a message that cannot be sealed is left to L2TP's retransmission.
        while let Some(t) = buf
            .get_mut(HEADROOM..end)
            .and_then(|space| self.l2tp.poll_transmit(now, space))
        {
            if let Ok(out) = self.seal(buf, HEADROOM..HEADROOM + t.len) {
                return Some(out);
            }
        }
        // PPP control, inside L2TP data messages.
        let frame_at = HEADROOM + l2tp::DATA_HEADROOM;
        while let (Some(ppp), Some(data)) = (self.ppp.as_mut(), self.data) {
            let Some(n) = buf
                .get_mut(frame_at..end)
                .and_then(|s| ppp.poll_transmit(s))
            else {
                break;
            };
            let sealed = data
                .encapsulate(buf, frame_at..frame_at + n)
                .map_err(|_| Drop::NoRoom)
                .and_then(|l2tp| self.seal(buf, l2tp));
            if let Ok(out) = sealed {
                return Some(out);
            }
        }
        // RFC 3948 §2.3: a single 0xFF keeps the NAT mapping of UDP 4500 alive.
        if self.keepalive_due {
            self.keepalive_due = false;
            if self.encapsulated() {
                let byte = buf.first_mut()?;
                *byte = 0xff;
                self.last_udp_send = now;
                return Some(Out {
                    route: self.udp_4500(),
                    range: 0..1,
                });
            }
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn keepalive_at(&self) -> Option<Instant> {
        let interval = self.keepalive?;
        (self.encapsulated() && !self.finished).then(|| self.last_udp_send + interval)
    }

    /// The earliest deadline of every layer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        [
            self.ike.poll_timeout(),
            self.l2tp.poll_timeout(),
            self.ppp.as_ref().and_then(ppp::Session::poll_timeout),
            self.keepalive_at(),
            self.teardown.map(|t| t.until),
            self.connect_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`. Early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.finished {
            return;
        }
        self.ike.handle_timeout(now);
        self.pump(now, Context::Timer);
        self.l2tp.handle_timeout(now);
        if let Some(ppp) = self.ppp.as_mut() {
            ppp.handle_timeout(now, &mut self.rng);
        }
        self.pump(now, Context::Timer);
        if self.keepalive_at().is_some_and(|at| at <= now) {
            self.keepalive_due = true;
            // Re-armed when the keepalive is written; until then do not fire again.
            self.last_udp_send = now;
        }
        if self.connect_deadline.is_some_and(|at| at <= now) {
            self.connect_deadline = None;
            let stage = self.stage();
            // How far IKE got tells why, as when IKE's own exchange timeout fires first.
            let reason = match (stage, self.cookies.is_some()) {
                (Stage::Ike, false) if self.replies == 0 => DownReason::ServerUnreachable,
                (Stage::Ike, false) if self.nat.key_exchanged() => {
                    DownReason::NoAuthenticationReply
                }
                _ => DownReason::Timeout,
            };
            self.fail(now, stage, reason);
        }
        self.advance_teardown(now);
    }

    /// Disconnects: PPP Terminate-Request, then CDN, StopCCN and the IKE Deletes, each given
    /// [`EngineConfig::teardown_step`]; then [`ClientEvent::Down`] with
    /// [`Stage::Disconnected`]. Drive it with [`Engine::handle_timeout`].
    pub fn disconnect(&mut self, now: Instant) {
        if self.reported || self.teardown.is_some() {
            return;
        }
        self.connect_deadline = None;
        self.start_teardown(now, true);
        self.pump(now, Context::Timer);
        self.advance_teardown(now);
    }

    /// Authenticated, but IPCP has not opened yet.
    const fn awaiting_address(&self) -> bool {
        self.authenticated && !self.up
    }

    /// The stage in progress.
    fn stage(&self) -> Stage {
        if self.cookies.is_none() {
            Stage::Ike
        } else if self.children.is_empty() {
            Stage::Ipsec
        } else if self.data.is_none() {
            Stage::L2tp
        } else {
            Stage::Ppp
        }
    }

    /// Reports a failure once and tears down what is still up.
    fn fail(&mut self, now: Instant, stage: Stage, reason: DownReason) {
        if self.reported || self.finished {
            return;
        }
        tracing::debug!(?stage, ?reason, "connection down");
        self.reported = true;
        self.connect_deadline = None;
        self.push(ClientEvent::Down { stage, reason });
        if self.teardown.is_none() {
            self.start_teardown(now, false);
        }
    }

    fn push(&mut self, event: ClientEvent) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(event);
        }
    }

    fn start_teardown(&mut self, now: Instant, requested: bool) {
        if let Some(ppp) = self.ppp.as_mut()
            && !ppp.is_dead()
        {
            ppp.close(now);
        }
        self.teardown = Some(Teardown {
            step: Step::Ppp,
            until: now + self.teardown_step,
            requested,
        });
    }

    /// Moves teardown to its next step when the current one is done or its moment passed.
    fn advance_teardown(&mut self, now: Instant) {
        while let Some(t) = self.teardown {
            let done = match t.step {
                Step::Ppp => self.ppp.as_ref().is_none_or(ppp::Session::is_dead),
                Step::Session | Step::Tunnel => false,
            };
            if !done && now < t.until {
                return;
            }
            let until = now + self.teardown_step;
            let next = match t.step {
                Step::Ppp => {
                    let closed = self.call.is_some_and(|(tunnel, session)| {
                        self.l2tp
                            .close_session(now, tunnel, session, CdnResult::ADMINISTRATIVE, None)
                            .is_ok()
                    });
                    closed
                        .then_some(Step::Session)
                        .or_else(|| self.stop_tunnel(now))
                }
                Step::Session => self.stop_tunnel(now),
                Step::Tunnel => None,
            };
            match next {
                Some(step) => {
                    self.teardown = Some(Teardown { step, until, ..t });
                    self.pump(now, Context::Timer);
                }
                None => {
                    self.teardown = None;
                    self.finish(now, t.requested);
                }
            }
        }
    }

    /// StopCCN, if a tunnel is open.
    fn stop_tunnel(&mut self, now: Instant) -> Option<Step> {
        let (tunnel, _) = self.call?;
        let open = self
            .l2tp
            .tunnel(tunnel)
            .is_some_and(|t| t.state() != l2tp::TunnelState::Closing && !t.is_closed());
        if !open {
            return None;
        }
        self.l2tp
            .close_tunnel(now, tunnel, StopCcnResult::GENERAL_REQUEST, None)
            .ok()
            .map(|()| Step::Tunnel)
    }

    /// The last step: IKE Deletes (ESP SAs and the ISAKMP SA), then nothing.
    fn finish(&mut self, now: Instant, requested: bool) {
        // Set first: the Down events of the layers closed here are expected, not failures.
        self.finished = true;
        if let Some(cookies) = self.cookies {
            self.ike.close(cookies);
        }
        self.pump(now, Context::Timer);
        for child in self.children.drain(..) {
            self.sadb.remove(Direction::Inbound, Spi(child.inbound));
            self.sadb.remove(Direction::Outbound, Spi(child.outbound));
        }
        self.keepalive_due = false;
        if requested && !self.reported {
            self.reported = true;
            self.push(ClientEvent::Down {
                stage: Stage::Disconnected,
                reason: DownReason::Requested,
            });
        }
    }

    /// Moves events between the layers until none is left.
    fn pump(&mut self, now: Instant, context: Context) {
        loop {
            let mut progress = false;
            while let Some(event) = self.ike.poll_event() {
                progress = true;
                self.on_ike(now, event, context);
            }
            while let Some(event) = self.l2tp.poll_event() {
                progress = true;
                self.on_l2tp(now, event);
            }
            while let Some(event) = self.ppp.as_mut().and_then(ppp::Session::poll_event) {
                progress = true;
                self.on_ppp(now, event);
            }
            if !progress {
                break;
            }
        }
    }

    fn on_ike(&mut self, now: Instant, event: IkeEvent, context: Context) {
        match event {
            IkeEvent::Phase1Up { cookies, nat, .. } => {
                if cookies.0 != self.cky_i || self.cookies.is_some() {
                    return;
                }
                self.cookies = Some(cookies);
                self.push(ClientEvent::IkeUp {
                    suite: self.nat.suite(),
                    nat,
                });
            }
            IkeEvent::ChildSaUp { cookies, child, .. } => {
                if Some(cookies) != self.cookies || self.finished {
                    return;
                }
                let transform = child.transform;
                let inbound = Sa::inbound(Spi(child.inbound_spi), transform, child.inbound_keys());
                let outbound = Sa::outbound(
                    Spi(child.outbound_spi),
                    transform,
                    child.outbound_keys(),
                    &mut self.rng,
                );
                if self.children.len() >= MAX_CHILDREN {
                    let oldest = self.children.remove(0);
                    self.sadb.remove(Direction::Inbound, Spi(oldest.inbound));
                    self.sadb.remove(Direction::Outbound, Spi(oldest.outbound));
                }
                let (Ok(inbound), Ok(outbound)) = (inbound, outbound) else {
                    self.fail(now, Stage::Ipsec, DownReason::Internal);
                    return;
                };
                if self.sadb.insert(inbound).is_err() || self.sadb.insert(outbound).is_err() {
                    self.sadb.remove(Direction::Inbound, Spi(child.inbound_spi));
                    self.fail(now, Stage::Ipsec, DownReason::Internal);
                    return;
                }
                let encapsulated = matches!(child.encapsulation, Encapsulation::UdpTransport(_));
                let first = self.children.is_empty() && self.call.is_none();
                self.children.push(Child {
                    inbound: child.inbound_spi,
                    outbound: child.outbound_spi,
                    encapsulated,
                });
                if first {
                    self.push(ClientEvent::IpsecUp {
                        encapsulated,
                        transform,
                    });
                    let peer = SocketAddr::new(self.server.ip(), L2TP_PORT);
                    match self.l2tp.connect(now, peer) {
                        Ok(call) => self.call = Some(call),
                        Err(_) => self.fail(now, Stage::L2tp, DownReason::Internal),
                    }
                }
            }
            IkeEvent::ChildSaDown {
                inbound_spi,
                outbound_spi,
            } => {
                self.sadb.remove(Direction::Inbound, Spi(inbound_spi));
                self.sadb.remove(Direction::Outbound, Spi(outbound_spi));
                let before = self.children.len();
                self.children.retain(|c| c.inbound != inbound_spi);
                if before > 0 && self.children.is_empty() && self.teardown.is_none() {
                    self.fail(now, Stage::Ipsec, DownReason::EspDeleted);
                }
            }
            IkeEvent::Phase1Down {
                cookies, reason, ..
            } => {
                if Some(cookies) == self.cookies {
                    self.cookies = None;
                    if self.teardown.is_none() {
                        self.fail(now, Stage::Ike, DownReason::Ike(reason));
                    }
                }
            }
            IkeEvent::Phase1Rekeyed { old, new } => {
                if Some(old) == self.cookies {
                    tracing::info!("IKE SA rekeyed");
                    self.cookies = Some(new);
                }
            }
            IkeEvent::PeerMoved { path, .. } => {
                tracing::debug!(server = %path.remote, "server address changed");
            }
            IkeEvent::Refused { refusal, .. } => {
                if self.cookies.is_some() {
                    return;
                }
                match context {
                    // The endpoint forgets an exchange that expired or ran out of
                    // retransmissions: how far it got tells why.
                    Context::Timer => {
                        let reason = if self.replies == 0 {
                            DownReason::ServerUnreachable
                        } else if self.nat.key_exchanged() {
                            DownReason::NoAuthenticationReply
                        } else {
                            DownReason::Timeout
                        };
                        self.fail(now, Stage::Ike, reason);
                    }
                    // These end our exchange; anything else was a stray datagram.
                    Context::Datagram => {
                        if matches!(
                            refusal,
                            Refusal::AuthenticationFailed
                                | Refusal::NoProposalChosen
                                | Refusal::InvalidKeyInformation
                                | Refusal::CertificateInvalid
                                | Refusal::CertificateExpired
                                | Refusal::UntrustedCertificate
                                | Refusal::IdMismatch
                                | Refusal::CertTypeUnsupported
                        ) {
                            self.fail(now, Stage::Ike, DownReason::Refused(refusal));
                        }
                    }
                }
            }
        }
    }

    fn on_l2tp(&mut self, now: Instant, event: l2tp::Event) {
        match event {
            l2tp::Event::SessionUp(up) => {
                if self.call != Some((up.tunnel, up.session)) || self.ppp.is_some() {
                    return;
                }
                self.data = self.l2tp.data_path(up.tunnel, up.session);
                if self.data.is_none() {
                    self.fail(now, Stage::L2tp, DownReason::Internal);
                    return;
                }
                self.push(ClientEvent::L2tpUp);
                let config = Arc::clone(&self.ppp_config);
                self.ppp = Some(ppp::Session::client(config, &mut self.rng, now));
            }
            l2tp::Event::SessionDown {
                tunnel,
                session,
                reason,
                ..
            } => {
                if self.call != Some((tunnel, session)) {
                    return;
                }
                self.data = None;
                if let Some(ppp) = self.ppp.as_mut() {
                    ppp.lower_layer_down(now);
                }
                if self.teardown.is_none() {
                    // The server clears the call as soon as its PPP gives up, often before
                    // our PPP has finished: after authentication that means no address.
                    let peer = matches!(
                        reason,
                        SessionDownReason::Disconnected {
                            origin: l2tp::Origin::Peer,
                            ..
                        }
                    );
                    if peer && self.awaiting_address() {
                        self.fail(now, Stage::Ppp, DownReason::Ppp(ppp::DownReason::NoAddress));
                    } else {
                        self.fail(now, Stage::L2tp, DownReason::Session(reason));
                    }
                }
            }
            l2tp::Event::TunnelDown { tunnel, reason, .. } => {
                if self.call.map(|c| c.0) != Some(tunnel) {
                    return;
                }
                self.data = None;
                if self.teardown.is_none() {
                    self.fail(now, Stage::L2tp, DownReason::Tunnel(reason));
                }
            }
            l2tp::Event::TunnelUp { .. } | l2tp::Event::SetLinkInfo { .. } => {}
        }
    }

    fn on_ppp(&mut self, now: Instant, event: ppp::Event) {
        match event {
            ppp::Event::Authenticated { method, .. } => {
                self.authenticated = true;
                self.push(ClientEvent::Authenticated { method });
            }
            ppp::Event::Ipv4Up(link) => {
                if self.up || self.reported {
                    return;
                }
                self.up = true;
                self.connect_deadline = None;
                self.push(ClientEvent::AddressAssigned {
                    local: link.local,
                    peer: link.peer,
                    dns: link.dns,
                });
            }
            ppp::Event::Down(reason) => {
                if self.teardown.is_none() {
                    let reason = match reason {
                        ppp::DownReason::PeerTerminated if self.awaiting_address() => {
                            ppp::DownReason::NoAddress
                        }
                        other => other,
                    };
                    self.fail(now, Stage::Ppp, DownReason::Ppp(reason));
                }
            }
            ppp::Event::LinkEstablished { .. }
            | ppp::Event::AuthRequest(_)
            | ppp::Event::AddressRequest { .. }
            | ppp::Event::Ipv4Down
            | ppp::Event::Ipv6Up(_)
            | ppp::Event::Ipv6Down => {}
        }
    }
}

#[cfg(test)]
mod tests;
