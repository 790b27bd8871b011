//! The LNS layer: L2TP tunnels and sessions with one PPP session each, joined to the user store,
//! the address pool and the zone policy.
//!
//! Inputs are inner L2TP datagrams (what came out of ESP) keyed by the peer's transport identity,
//! and IP packets from the TUN device; outputs are inner L2TP datagrams for the IPsec layer and IP
//! packets for TUN. Data packets are never copied: a received IP packet is a range of the L2TP
//! datagram it came in, and an outgoing one gets its PPP and L2TP headers written into headroom.
//!
//! ```text
//!   IPsec layer ──L2TP──▶ l2tp::Endpoint ──PPP frame──▶ ppp::Session ──IPv4──▶ policy ──▶ TUN
//!   IPsec layer ◀──L2TP── DataPath      ◀──PPP frame── ppp::Session ◀──IPv4── policy ◀── TUN
//! ```

use crate::engine::policy::{Drop as PolicyDrop, Flow, Policy};
use crate::engine::pool::Pool;
use crate::engine::radius::{
    Accounting, Authentic, Authorization, MIN_SERVER_INTERIM, Order, RadiusSettings, Traffic,
    same_session_id, terminate_cause,
};
use crate::users::{Credential as StoredCredential, Users};
use l2tp::wire::message::{CdnResult, StopCcnResult};
use l2tp::{DataPath, Received, SessionId, TunnelId};
use ppp::auth::{
    AuthRequest, AuthenticatorResponse, Credential, Grant, Method, NtHash, Password, Proof, Verdict,
};
use ppp::ipcp::Assignment;
use ppp::wire::Protocol;
use ppp::{DownReason, Event as PppEvent, Session};
use radius::dae::{DaeKind, DaeRequest};
use radius::verify::MessageAuthenticatorPolicy;
use radius::wire::{AcctAuthentic, AcctStatusType, AcctTerminateCause, ErrorCause};
use radius::{AccessRequest, AccountingRequest, AcctSessionId, Credentials, RequestId};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timer::{ReadyQueue, TimerQueue};

/// Bytes an outgoing IP packet needs in front of it: PPP (4) and L2TP data (6) headers.
pub const HEADROOM: usize = ppp::wire::HEADER_LEN + l2tp::DATA_HEADROOM;

/// Settings of the LNS layer.
#[derive(Debug, Clone)]
pub struct LnsConfig {
    /// L2TP settings.
    pub l2tp: Arc<l2tp::Config>,
    /// PPP settings (authentication methods, echo, MRU).
    pub ppp: Arc<ppp::ServerConfig>,
    /// The server's own address on every PPP link.
    pub local: Ipv4Addr,
    /// DNS servers offered through IPCP.
    pub dns: [Option<Ipv4Addr>; 2],
}

/// What the layer reports to the driver (logged at `info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LnsEvent {
    /// A user is connected and has an address.
    Connected {
        /// Transport identity of the peer.
        peer: SocketAddr,
        /// The authenticated user.
        user: String,
        /// The address handed out.
        address: Ipv4Addr,
        /// The authentication method.
        method: Method,
    },
    /// A user's session ended; its address went back to the pool.
    Disconnected {
        /// Transport identity of the peer.
        peer: SocketAddr,
        /// The user, if authentication had completed.
        user: Option<String>,
        /// The address released, if one was assigned.
        address: Option<Ipv4Addr>,
        /// Why PPP went down (or the lower layer did).
        reason: DownReason,
        /// How long the user had an address.
        duration: Option<Duration>,
        /// Inner IP bytes from and to the user.
        bytes: (u64, u64),
    },
    /// An authenticated user could get no address (pool exhausted, static address taken).
    AddressRefused {
        /// Transport identity of the peer.
        peer: SocketAddr,
        /// The authenticated user.
        user: String,
        /// Why, for the log.
        why: &'static str,
    },
    /// Authentication failed (rate-limit these in logs).
    AuthFailed {
        /// Transport identity of the peer.
        peer: SocketAddr,
        /// The name presented.
        user: String,
        /// Why, for the log (never a secret).
        why: &'static str,
    },
    /// Something RADIUS-related an operator wants to see (a server dead or back, an
    /// Access-Accept we could not honour, a Disconnect-Request acted on).
    Radius {
        /// What happened.
        what: String,
    },
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Drop {
    /// L2TP refused it.
    #[error("L2TP: {0}")]
    L2tp(l2tp::Discard),
    /// PPP refused it.
    #[error("PPP: {0}")]
    Ppp(ppp::session::Discard),
    /// A data message for a session without PPP.
    #[error("no PPP session")]
    NoSession,
    /// The source address is not the one the session was given (anti-spoofing).
    #[error("spoofed source")]
    Spoofed,
    /// No rule allows the flow.
    #[error("policy")]
    Policy,
    /// Not an IPv4 packet we can route.
    #[error("malformed IP")]
    Malformed,
    /// No session owns the destination address.
    #[error("no route")]
    NoRoute,
}

/// Counters of dropped packets, for rate-limited summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LnsStats {
    /// Packets from clients dropped by policy.
    pub policy_out: u64,
    /// Packets to clients dropped by policy.
    pub policy_in: u64,
    /// Packets with a source other than the client's address.
    pub spoofed: u64,
    /// Packets from TUN for no client.
    pub no_route: u64,
}

#[derive(Debug)]
struct Link {
    /// Draws its random bytes from the LNS's generator, passed to each input: a session
    /// carries no generator of its own.
    ppp: Session,
    peer: SocketAddr,
    data: Option<DataPath>,
    user: Option<String>,
    method: Option<Method>,
    address: Option<Ipv4Addr>,
    /// NAS-Port: the tunnel and session IDs.
    nas_port: u32,
    /// Acct-Session-Id, when RADIUS is configured.
    acct_session_id: Option<AcctSessionId>,
    /// The Access-Request in flight for this link, and the PPP request it asks about (kept
    /// for the local fallback of [`Order::RadiusFirst`]). Boxed: it exists only while RADIUS
    /// decides, and an idle link should not carry its room.
    pending: Option<Box<(RequestId, AuthRequest)>>,
    /// What the user was granted; set at acceptance.
    authz: Option<Authorization>,
    /// Start sent; Interim-Update timing.
    accounting: Option<Accounting>,
    traffic: Traffic,
    /// When the address came up (Idle-Timeout counts from here until the first packet).
    up_at: Option<Instant>,
    /// Why the LNS itself ended the session, for Acct-Terminate-Cause.
    cause: Option<AcctTerminateCause>,
}

impl Link {
    fn policy<'a>(&'a self, general: &'a Policy) -> &'a Policy {
        self.authz
            .as_ref()
            .and_then(|a| a.filter.as_ref())
            .map_or(general, |(_, p)| p)
    }

    /// The earliest of the session's own deadlines.
    fn deadline(&self) -> Option<Instant> {
        let interim = self.accounting.and_then(|a| a.next_interim);
        let authz = self.authz.as_ref().filter(|_| self.cause.is_none());
        let Some(authz) = authz else {
            return interim;
        };
        let idle = authz
            .idle_timeout
            .zip(self.traffic.last_activity.or(self.up_at))
            .map(|(t, last)| last + t);
        [authz.session_end, idle, interim]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The RADIUS client and what it waits for.
#[derive(Debug)]
struct Radius {
    client: radius::Client<ChaCha20Rng>,
    settings: RadiusSettings,
    /// Access-Requests in flight and the link each is for (at most one per link).
    auth: BTreeMap<RequestId, (TunnelId, SessionId)>,
    /// Recent Disconnect/CoA answers by (source, Identifier, Authenticator), so that a
    /// retransmission gets the same answer (RFC 5080 §2.2.2); at most [`DAE_CACHE`].
    dae_answers: VecDeque<(SocketAddr, u8, [u8; 16], Vec<u8>)>,
    /// An instant and the wall-clock time then (seconds since 1970), from the driver: what
    /// Event-Timestamp is computed from. The engine reads no clock.
    wall: Option<(Instant, u64)>,
}

impl Radius {
    /// Event-Timestamp for `now` (RFC 2869 §5.3), if the driver told us the wall clock.
    fn event_timestamp(&self, now: Instant) -> Option<u32> {
        let (at, secs) = self.wall?;
        let t = secs.checked_add(now.checked_duration_since(at)?.as_secs())?;
        u32::try_from(t).ok()
    }
}

/// Disconnect/CoA answers remembered for retransmissions.
const DAE_CACHE: usize = 32;

/// A session: its tunnel and call.
type Key = (TunnelId, SessionId);

/// The LNS layer. Sans-IO: see the module docs.
#[derive(Debug)]
pub struct Lns<R> {
    config: LnsConfig,
    l2tp: l2tp::Endpoint<ChaCha20Rng>,
    /// Boxed: a link is over a kilobyte, and B-tree nodes hold eleven values whether used or
    /// not.
    links: BTreeMap<(TunnelId, SessionId), Box<Link>>,
    by_address: BTreeMap<Ipv4Addr, (TunnelId, SessionId)>,
    /// Sessions by User-Name, Acct-Session-Id and peer, for Disconnect/CoA requests.
    index: index::SessionIndex,
    pool: Pool,
    users: Users,
    policy: Policy,
    rng: R,
    events: VecDeque<LnsEvent>,
    stats: LnsStats,
    radius: Option<Radius>,
    /// Pools for Framed-Pool, by name; their addresses are reserved in `pool`.
    named_pools: BTreeMap<String, Pool>,
    /// Rule sets for Filter-Id, by name.
    filters: BTreeMap<String, Arc<Policy>>,
    /// Operator kicks in progress.
    admin: admin::Admin,
    /// Each session's next deadline (PPP's and its own), so that timers cost O(sessions due).
    timers: TimerQueue<Key, Instant>,
    /// Sessions touched since their events were last drained and their deadline read again.
    ready: ReadyQueue<Key>,
    /// Sessions that may have PPP control frames to send; what [`Lns::poll_transmit`] asks.
    sending: ReadyQueue<Key>,
    /// Sessions visited by the timer and ready paths (the cost those paths pay, for tests).
    #[cfg(test)]
    visits: u64,
    /// Sessions a Disconnect/CoA request had examined (what a lookup costs, for tests).
    #[cfg(test)]
    dae_visits: u64,
}

fn credential(stored: &StoredCredential) -> Credential {
    match stored {
        StoredCredential::Password(p) => Credential::Password(Password::new(p.as_bytes())),
        StoredCredential::NtHash(h) => Credential::NtHash(NtHash(**h)),
    }
}

impl<R: CryptoRng> Lns<R> {
    /// A layer with no tunnels.
    pub fn new(config: LnsConfig, pool: Pool, users: Users, policy: Policy, mut rng: R) -> Self {
        let l2tp = l2tp::Endpoint::new(Arc::clone(&config.l2tp), ChaCha20Rng::from_rng(&mut rng));
        Self {
            config,
            l2tp,
            links: BTreeMap::new(),
            by_address: BTreeMap::new(),
            index: index::SessionIndex::default(),
            pool,
            users,
            policy,
            rng,
            events: VecDeque::new(),
            stats: LnsStats::default(),
            radius: None,
            named_pools: BTreeMap::new(),
            filters: BTreeMap::new(),
            admin: admin::Admin::default(),
            timers: TimerQueue::new(),
            ready: ReadyQueue::new(),
            sending: ReadyQueue::new(),
            #[cfg(test)]
            visits: 0,
            #[cfg(test)]
            dae_visits: 0,
        }
    }

    /// Marks a session whose PPP was given input: its events are drained and its deadline read
    /// again at the next pump, and it is asked for frames at the next [`Lns::poll_transmit`].
    fn touch(&mut self, key: Key) {
        self.ready.push(key);
        self.sending.push(key);
    }

    /// Reads a session's deadline again (PPP's timers and its own).
    fn rearm(&mut self, key: Key) {
        let at = self.links.get(&key).and_then(|l| {
            [l.ppp.poll_timeout(), l.deadline()]
                .into_iter()
                .flatten()
                .min()
        });
        self.timers.set(key, at);
    }

    /// Authenticates (as [`RadiusSettings::order`] says) and accounts through RADIUS.
    ///
    /// # Errors
    /// The RADIUS client's refusal of the settings.
    pub fn with_radius(mut self, settings: RadiusSettings) -> Result<Self, radius::ConfigError> {
        let rng = ChaCha20Rng::from_rng(&mut self.rng);
        let client = radius::Client::new(settings.client.clone(), settings.boot, rng)?;
        self.radius = Some(Radius {
            client,
            settings,
            auth: BTreeMap::new(),
            dae_answers: VecDeque::new(),
            wall: None,
        });
        Ok(self)
    }

    /// Named pools for RADIUS Framed-Pool; their addresses must be reserved in the general
    /// pool.
    #[must_use]
    pub fn with_named_pools(mut self, pools: BTreeMap<String, Pool>) -> Self {
        self.named_pools = pools;
        self
    }

    /// Named rule sets for RADIUS Filter-Id.
    #[must_use]
    pub fn with_filters(mut self, filters: BTreeMap<String, Policy>) -> Self {
        self.filters = filters.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        self
    }

    /// Tells the engine the wall-clock time (seconds since 1970) at `now`, for the
    /// Event-Timestamp of accounting records. The driver calls it once at start.
    pub fn set_wall_clock(&mut self, now: Instant, unix_seconds: u64) {
        if let Some(r) = self.radius.as_mut() {
            r.wall = Some((now, unix_seconds));
        }
    }

    /// Whether RADIUS is configured.
    pub const fn has_radius(&self) -> bool {
        self.radius.is_some()
    }

    /// RADIUS requests not yet answered or given up (the driver waits for them at shutdown).
    pub fn radius_pending(&self) -> usize {
        self.radius.as_ref().map_or(0, |r| r.client.pending())
    }

    /// RADIUS counters.
    pub fn radius_stats(&self) -> Option<radius::Stats> {
        self.radius.as_ref().map(|r| *r.client.stats())
    }

    /// Accounting-On (RFC 2866 §5.1): the NAS starts with no sessions. Call once at start.
    pub fn accounting_on(&mut self, now: Instant) {
        self.accounting_onoff(now, AcctStatusType::ACCOUNTING_ON);
    }

    /// A clean stop: Stop for every session with Acct-Terminate-Cause Admin-Reboot, then
    /// Accounting-Off. The sessions themselves are left to the clients' keepalives.
    pub fn accounting_off(&mut self, now: Instant) {
        if let Some(r) = self.radius.as_mut() {
            for link in self.links.values_mut() {
                if link.accounting.is_some() {
                    record(
                        r,
                        link,
                        now,
                        AcctStatusType::STOP,
                        Some(AcctTerminateCause::ADMIN_REBOOT),
                    );
                    link.accounting = None;
                }
            }
        }
        self.accounting_onoff(now, AcctStatusType::ACCOUNTING_OFF);
    }

    fn accounting_onoff(&mut self, now: Instant, status: AcctStatusType) {
        let Some(r) = self.radius.as_mut().filter(|r| r.settings.accounting) else {
            return;
        };
        let id = r.client.next_acct_session_id();
        let mut request = AccountingRequest::new(status, id);
        request.terminate_cause =
            (status == AcctStatusType::ACCOUNTING_OFF).then_some(AcctTerminateCause::ADMIN_REBOOT);
        request.event_timestamp = r.event_timestamp(now);
        if let Err(e) = r.client.account(now, request) {
            tracing::warn!(%e, "RADIUS accounting request not sent");
        }
    }

    /// Feeds a datagram that arrived on the RADIUS client socket.
    ///
    /// # Errors
    /// The RADIUS client's [`radius::Discard`]: dropped (logged by the caller).
    pub fn handle_radius(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), radius::Discard> {
        let Some(r) = self.radius.as_mut() else {
            return Err(radius::Discard::UnknownSource);
        };
        let result = r.client.handle_datagram(now, from, datagram);
        self.radius_events(now);
        self.pump(now);
        result
    }

    /// Writes the next RADIUS datagram into `buf`; returns its destination and length.
    pub fn poll_radius_transmit(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let t = self.radius.as_mut()?.client.poll_transmit(buf)?;
        Some((t.to, t.len))
    }

    /// Drop counters.
    pub const fn stats(&self) -> LnsStats {
        self.stats
    }

    /// The address pool.
    pub const fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Connected sessions.
    pub fn sessions(&self) -> usize {
        self.links.len()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LnsEvent> {
        self.events.pop_front()
    }

    /// Feeds one inner L2TP datagram from `peer`. An IPv4 packet for the intranet comes back as
    /// a range of `datagram`, already checked against anti-spoofing and the policy.
    ///
    /// # Errors
    /// [`Drop`]: nothing to forward (control traffic is `Ok(None)`).
    pub fn handle_l2tp(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Option<Range<usize>>, Drop> {
        let received = self
            .l2tp
            .handle_datagram(now, peer, datagram)
            .map_err(Drop::L2tp);
        let Ok(Received::Data(data)) = received else {
            self.pump(now);
            return received.map(|_| None);
        };
        let key = (data.tunnel, data.session);
        // A data message changes nothing in L2TP: no events to drain.
        let link = self
            .links
            .get_mut(&(data.tunnel, data.session))
            .ok_or(Drop::NoSession)?;
        let frame = &datagram[data.frame.clone()];
        let result = (link.ppp)
            .handle_frame(now, &mut self.rng, frame)
            .map_err(Drop::Ppp);
        let packet = match result {
            Ok(ppp::Received::Ipv4(ip)) => {
                // The packet is a sub-slice of the frame: compute its range in `datagram`.
                let offset = data.frame.start + (ip.as_ptr() as usize - frame.as_ptr() as usize);
                Some(offset..offset + ip.len())
            }
            // PPP control: that session (only) has news.
            Ok(_) => {
                self.touch(key);
                self.pump(now);
                None
            }
            // Dropped: nothing changed.
            Err(e) => return Err(e),
        };
        let Some(range) = packet else { return Ok(None) };
        let link = self
            .links
            .get_mut(&(data.tunnel, data.session))
            .ok_or(Drop::NoSession)?;
        let flow = link
            .policy(&self.policy)
            .check_outbound(&datagram[range.clone()])
            .map_err(|e| {
                self.stats.policy_out += 1;
                match e {
                    PolicyDrop::Malformed => Drop::Malformed,
                    PolicyDrop::NoRule => Drop::Policy,
                }
            });
        let flow = flow?;
        // A client may only send from the address it was given.
        if Some(flow.src) != link.address {
            self.stats.spoofed += 1;
            return Err(Drop::Spoofed);
        }
        link.traffic.input(now, range.len());
        Ok(Some(range))
    }

    /// Takes an IP packet from TUN at `buf[packet]` (with [`HEADROOM`] bytes free before it)
    /// and wraps it for the client that owns its destination. Returns the peer and the range of
    /// the inner L2TP datagram in `buf`.
    ///
    /// # Errors
    /// [`Drop::NoRoute`], [`Drop::Policy`], or PPP's refusal (not open, too long).
    pub fn handle_tun(
        &mut self,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Result<(SocketAddr, Range<usize>), Drop> {
        let ip = buf.get(packet.clone()).ok_or(Drop::Malformed)?;
        let flow = Flow::parse(ip).ok_or(Drop::Malformed)?;
        let link = self
            .by_address
            .get(&flow.dst)
            .and_then(|k| self.links.get_mut(k));
        let Some(link) = link else {
            // Judged by the general policy first, so that the counters say why.
            if !self.policy.allows_inbound(&flow) {
                self.stats.policy_in += 1;
                return Err(Drop::Policy);
            }
            self.stats.no_route += 1;
            return Err(Drop::NoRoute);
        };
        if !link.policy(&self.policy).allows_inbound(&flow) {
            self.stats.policy_in += 1;
            return Err(Drop::Policy);
        }
        let len = packet.len();
        let data = link.data.ok_or(Drop::NoSession)?;
        let frame = link
            .ppp
            .encapsulate(Protocol::IPV4, buf, packet)
            .map_err(Drop::Ppp)?;
        let datagram = data.encapsulate(buf, frame).map_err(|_| Drop::Malformed)?;
        link.traffic.output(len);
        Ok((data.peer, datagram))
    }

    /// Writes the next control datagram (L2TP control, or PPP control inside L2TP data) and
    /// returns its peer and length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        if let Some(t) = self.l2tp.poll_transmit(now, buf) {
            return Some((t.peer, t.len));
        }
        // Only sessions given input or a timer since they last ran dry are asked.
        while let Some(key) = self.sending.front() {
            #[cfg(test)]
            {
                self.visits += 1;
            }
            if let Some(link) = self.links.get_mut(&key)
                && let Some(data) = link.data
            {
                let space = buf.get_mut(HEADROOM..)?;
                if let Some(n) = link.ppp.poll_transmit(space) {
                    let range = data.encapsulate(buf, HEADROOM..HEADROOM + n).ok()?;
                    buf.copy_within(range.clone(), 0);
                    return Some((data.peer, range.len()));
                }
            }
            self.sending.pop();
        }
        None
    }

    /// The earliest deadline of L2TP, RADIUS and every PPP session. O(log n).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.earliest(),
            self.l2tp.poll_timeout(),
            self.radius.as_ref().and_then(|r| r.client.poll_timeout()),
            self.admin_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.l2tp.handle_timeout(now);
        if let Some(r) = self.radius.as_mut() {
            r.client.handle_timeout(now);
        }
        self.radius_events(now);
        self.admin_timeout(now);
        // Only the sessions whose deadline has come; each is re-armed by the pump.
        let mut due = Vec::new();
        while let Some(key) = self.timers.pop_due(&now) {
            due.push(key);
        }
        for key in due {
            #[cfg(test)]
            {
                self.visits += 1;
            }
            self.session_timers(now, key);
            if let Some(link) = self.links.get_mut(&key)
                && link.ppp.poll_timeout().is_some_and(|t| t <= now)
            {
                link.ppp.handle_timeout(now, &mut self.rng);
            }
            self.touch(key);
        }
        self.pump(now);
    }

    /// Session-Timeout, Idle-Timeout and Interim-Update of one session.
    fn session_timers(&mut self, now: Instant, key: (TunnelId, SessionId)) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        let Some(authz) = link.authz.as_ref() else {
            return;
        };
        let last = link.traffic.last_activity.or(link.up_at);
        let idle = authz
            .idle_timeout
            .zip(last)
            .is_some_and(|(t, l)| l + t <= now);
        let over = authz.session_end.is_some_and(|t| t <= now);
        if link.cause.is_none() && (over || idle) {
            let cause = if over {
                AcctTerminateCause::SESSION_TIMEOUT
            } else {
                AcctTerminateCause::IDLE_TIMEOUT
            };
            tracing::info!(peer = %link.peer, user = link.user.as_deref().unwrap_or("-"), ?cause, "ending the session");
            link.cause = Some(cause);
            link.ppp.close(now);
            // No more deadlines for this session: PPP takes it down.
            if let Some(a) = link.authz.as_mut() {
                a.session_end = None;
                a.idle_timeout = None;
            }
        }
        let interim = link.authz.as_ref().and_then(|a| a.interim);
        if let Some(acct) = link.accounting.as_mut()
            && acct.next_interim.is_some_and(|t| t <= now)
        {
            acct.next_interim = interim.map(|i| now + i);
            self.account(now, key, AcctStatusType::INTERIM_UPDATE, None);
        }
    }

    /// A clean stop: every tunnel ends with StopCCN (Shutting Down), its calls with it.
    pub fn close_all(&mut self, now: Instant) {
        self.l2tp.close_all(now);
        self.pump(now);
    }

    /// L2TP tunnels, established or still being set up or closed.
    #[must_use]
    pub fn tunnels(&self) -> usize {
        self.l2tp.tunnel_count()
    }

    /// The IPsec layer lost the peer (DPD, delete): every session of it ends.
    pub fn peer_gone(&mut self, now: Instant, peer: SocketAddr) {
        let tunnels: Vec<TunnelId> = self.l2tp.tunnels_of(peer).collect();
        for t in tunnels {
            let _ = self
                .l2tp
                .close_tunnel(now, t, StopCcnResult::GENERAL_REQUEST, None);
        }
        self.pump(now);
    }

    /// Moves events between the layers until nothing is left to do. Only the sessions
    /// touched since the last pump are visited; each has its deadline read again.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            while let Some(event) = self.l2tp.poll_event() {
                progress = true;
                self.on_l2tp(now, event);
            }
            while let Some(key) = self.ready.pop() {
                #[cfg(test)]
                {
                    self.visits += 1;
                }
                while let Some(event) = self.links.get_mut(&key).and_then(|l| l.ppp.poll_event()) {
                    progress = true;
                    self.on_ppp(now, key, event);
                }
                self.rearm(key);
            }
            if !progress {
                break;
            }
        }
    }

    fn on_l2tp(&mut self, now: Instant, event: l2tp::Event) {
        match event {
            l2tp::Event::TunnelUp {
                peer,
                tunnel,
                ref peer_host_name,
                ..
            } => tracing::info!(
                %peer,
                tunnel = tunnel.0,
                host = %String::from_utf8_lossy(peer_host_name).chars().take(64).collect::<String>(),
                "L2TP tunnel established"
            ),
            l2tp::Event::SessionUp(up) => {
                tracing::info!(peer = %up.peer, tunnel = up.tunnel.0, session = up.session.0, "L2TP session established");
                let ppp = Session::server(Arc::clone(&self.config.ppp), &mut self.rng, now);
                let data = self.l2tp.data_path(up.tunnel, up.session);
                let acct_session_id = self
                    .radius
                    .as_mut()
                    .map(|r| r.client.next_acct_session_id());
                self.links.insert(
                    (up.tunnel, up.session),
                    Box::new(Link {
                        ppp,
                        peer: up.peer,
                        data,
                        user: None,
                        method: None,
                        address: None,
                        nas_port: (u32::from(up.tunnel.0) << 16) | u32::from(up.session.0),
                        acct_session_id,
                        pending: None,
                        authz: None,
                        accounting: None,
                        traffic: Traffic::default(),
                        up_at: None,
                        cause: None,
                    }),
                );
                (self.index).insert((up.tunnel, up.session), up.peer, acct_session_id);
                self.touch((up.tunnel, up.session));
            }
            l2tp::Event::SessionDown {
                peer,
                tunnel,
                session,
                reason,
                ..
            } => {
                tracing::info!(%peer, tunnel = tunnel.0, session = session.0, ?reason, "L2TP session closed");
                // A call that goes with its tunnel is released by `TunnelDown`, which knows
                // whether the peer hung up (StopCCN) or was lost.
                if reason == l2tp::SessionDownReason::TunnelDown {
                    return;
                }
                if let Some(mut link) = self.links.remove(&(tunnel, session)) {
                    link.ppp.lower_layer_down(now);
                    // A peer that sent LCP Terminate-Request before its CDN hung up cleanly:
                    // PPP's own reason says so. So did one whose CDN gives an orderly reason.
                    let mut reason = if peer_hung_up_session(reason) {
                        DownReason::PeerTerminated
                    } else {
                        DownReason::LowerLayerDown
                    };
                    while let Some(event) = link.ppp.poll_event() {
                        if let PppEvent::Down(r) = event {
                            reason = r;
                        }
                    }
                    self.release(now, (tunnel, session), link, reason);
                }
            }
            l2tp::Event::TunnelDown {
                peer,
                tunnel,
                reason,
                ..
            } => {
                tracing::info!(%peer, tunnel = tunnel.0, ?reason, "L2TP tunnel closed");
                let gone: Vec<_> = self
                    .links
                    .range((tunnel, SessionId(0))..=(tunnel, SessionId(u16::MAX)))
                    .map(|(k, _)| *k)
                    .collect();
                // xl2tpd's `d` (and a laptop shutting down) sends StopCCN with "general
                // request to clear the control connection" first: a clean hang-up.
                let why = if matches!(
                    reason,
                    l2tp::TunnelDownReason::Stopped {
                        origin: l2tp::Origin::Peer,
                        result: StopCcnResult::GENERAL_REQUEST,
                        ..
                    }
                ) {
                    DownReason::PeerTerminated
                } else {
                    DownReason::LowerLayerDown
                };
                // Our own StopCCN "shutting down" (a clean stop of the server): the NAS
                // ends the session, Acct-Terminate-Cause Admin-Reboot.
                let shutdown = matches!(
                    reason,
                    l2tp::TunnelDownReason::Stopped {
                        origin: l2tp::Origin::Local,
                        result: StopCcnResult::SHUTTING_DOWN,
                        ..
                    }
                );
                for key in gone {
                    if let Some(mut link) = self.links.remove(&key) {
                        if shutdown {
                            link.cause.get_or_insert(AcctTerminateCause::ADMIN_REBOOT);
                        }
                        link.ppp.lower_layer_down(now);
                        let mut reason = why;
                        while let Some(event) = link.ppp.poll_event() {
                            if let PppEvent::Down(DownReason::PeerTerminated) = event {
                                reason = DownReason::PeerTerminated;
                            }
                        }
                        self.release(now, key, link, reason);
                    }
                }
            }
            _ => {}
        }
    }

    fn release(
        &mut self,
        now: Instant,
        key: (TunnelId, SessionId),
        mut link: Box<Link>,
        reason: DownReason,
    ) {
        let peer = link.peer;
        self.timers.remove(key);
        let (acct, user) = (link.acct_session_id.as_ref(), link.user.as_deref());
        self.index.remove(key, peer, acct, user);
        if let (Some(r), Some((id, _))) = (self.radius.as_mut(), link.pending.take().map(|p| *p)) {
            r.client.cancel(now, id);
            r.auth.remove(&id);
        }
        if link.accounting.is_some() {
            self.stop_record(now, &link, reason);
        }
        if let Some(a) = link.address {
            self.by_address.remove(&a);
            self.pool.release(a);
            for pool in self.named_pools.values_mut() {
                pool.release(a);
            }
        }
        self.events.push_back(LnsEvent::Disconnected {
            peer: link.peer,
            user: link.user,
            address: link.address,
            reason,
            duration: link.up_at.map(|t| now.saturating_duration_since(t)),
            bytes: (
                link.traffic.counters.input_octets,
                link.traffic.counters.output_octets,
            ),
        });
        self.after_release(now, key.0, peer);
    }

    fn on_ppp(&mut self, now: Instant, key: (TunnelId, SessionId), event: PppEvent) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        match event {
            PppEvent::AuthRequest(request) => self.on_auth_request(now, key, request),
            PppEvent::Authenticated { user, method, .. } => {
                tracing::info!(peer = %link.peer, %user, method = method.name(), "PPP authenticated");
                self.index.rename(key, link.user.as_deref(), &user);
                link.user = Some(user);
                link.method = Some(method);
                if link.authz.is_none() {
                    let interim = self
                        .radius
                        .as_ref()
                        .and_then(|r| r.settings.interim_interval);
                    link.authz = Some(Authorization::local(interim));
                }
            }
            PppEvent::AddressRequest { user } => {
                let address = self.choose_address(key, &user);
                let Some(link) = self.links.get_mut(&key) else {
                    return;
                };
                match address {
                    Ok(address) => {
                        link.address = Some(address);
                        self.by_address.insert(address, key);
                        let assignment = Assignment {
                            local: self.config.local,
                            peer: address,
                            dns: self.config.dns,
                            nbns: [None; 2],
                        };
                        link.ppp.assign_address(now, assignment);
                        self.touch(key);
                    }
                    Err(why) => {
                        let peer = link.peer;
                        link.ppp.refuse_address(now);
                        (self.events).push_back(LnsEvent::AddressRefused { peer, user, why });
                        self.touch(key);
                    }
                }
            }
            PppEvent::Ipv4Up(ipv4) => {
                let (peer, user, method) = (
                    link.peer,
                    link.user.clone().unwrap_or_default(),
                    link.method.unwrap_or(Method::Pap),
                );
                self.events.push_back(LnsEvent::Connected {
                    peer,
                    user,
                    address: ipv4.peer,
                    method,
                });
                link.up_at.get_or_insert(now);
                let accounting = self.radius.as_ref().is_some_and(|r| r.settings.accounting);
                if accounting && link.accounting.is_none() {
                    let interim = link.authz.as_ref().and_then(|a| a.interim);
                    link.accounting = Some(Accounting {
                        started: now,
                        next_interim: interim.map(|i| now + i),
                    });
                    self.account(now, key, AcctStatusType::START, None);
                }
            }
            PppEvent::Down(reason) => {
                // PPP is finished: the L2TP session goes too (CDN), and the address returns.
                let result = cdn_result(reason, link.cause);
                let _ = self.l2tp.close_session(now, key.0, key.1, result, None);
                if let Some(link) = self.links.remove(&key) {
                    self.release(now, key, link, reason);
                }
            }
            _ => {}
        }
    }

    fn local_verdict(&self, request: &AuthRequest) -> Verdict {
        match self.users.get(&request.user) {
            Some(user) => request.verify(&credential(&user.credential)),
            None => Verdict::Reject,
        }
    }

    /// Hands PPP its verdict; a refusal is reported with `why`.
    fn verdict(
        &mut self,
        now: Instant,
        key: (TunnelId, SessionId),
        verdict: Verdict,
        why: &'static str,
        message: Option<Vec<u8>>,
    ) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        link.pending = None;
        if verdict == Verdict::Reject {
            link.authz = None;
            self.events.push_back(LnsEvent::AuthFailed {
                peer: link.peer,
                user: link.user.clone().unwrap_or_default(),
                why,
            });
        }
        match message.as_deref().and_then(ppp_text) {
            Some(text) => (link.ppp).auth_verdict_with_message(now, &mut self.rng, verdict, &text),
            None => link.ppp.auth_verdict(now, &mut self.rng, verdict),
        }
        self.touch(key);
    }

    /// Answers from the local file or asks RADIUS, as [`Order`] says. The event loop never
    /// waits: a RADIUS answer arrives later through [`Lns::handle_radius`] or a timeout.
    fn on_auth_request(&mut self, now: Instant, key: (TunnelId, SessionId), request: AuthRequest) {
        let order = self.radius.as_ref().map(|r| r.settings.order);
        let local = self.users.get(&request.user).is_some();
        if let Some(link) = self.links.get_mut(&key) {
            // For the failure event; replaced by PPP's Authenticated on success.
            self.index.rename(key, link.user.as_deref(), &request.user);
            link.user = Some(request.user.clone());
        }
        let ask_radius = match order {
            None => false,
            Some(Order::LocalFirst) => !local,
            Some(Order::RadiusOnly | Order::RadiusFirst) => true,
        };
        if !ask_radius {
            let verdict = self.local_verdict(&request);
            self.verdict(
                now,
                key,
                verdict,
                "wrong user or password (users file)",
                None,
            );
            return;
        }
        let (Some(r), Some(link)) = (self.radius.as_mut(), self.links.get_mut(&key)) else {
            return;
        };
        let access = AccessRequest {
            user_name: request.user.as_bytes().to_vec(),
            credentials: credentials(&request.proof),
            nas_port: Some(link.nas_port),
            calling_station_id: Some(link.peer.ip().to_string().into_bytes()),
            called_station_id: r.settings.called_station_id.clone(),
            acct_session_id: link.acct_session_id,
        };
        match r.client.authenticate(now, access) {
            Ok(id) => {
                r.auth.insert(id, key);
                link.pending = Some(Box::new((id, request)));
            }
            Err(e) => {
                tracing::warn!(%e, "RADIUS Access-Request not sent");
                self.fallback(now, key, &request);
            }
        }
    }

    /// No RADIUS answer: the local file decides under [`Order::RadiusFirst`], else a refusal.
    fn fallback(&mut self, now: Instant, key: (TunnelId, SessionId), request: &AuthRequest) {
        let order = self.radius.as_ref().map(|r| r.settings.order);
        if order == Some(Order::RadiusFirst) && self.users.get(&request.user).is_some() {
            let verdict = self.local_verdict(request);
            self.verdict(
                now,
                key,
                verdict,
                "no RADIUS server answered; wrong user or password (users file)",
                None,
            );
        } else {
            self.verdict(now, key, Verdict::Reject, "no RADIUS server answered", None);
        }
    }

    /// Acts on what the RADIUS client reports.
    fn radius_events(&mut self, now: Instant) {
        loop {
            let Some(r) = self.radius.as_mut() else {
                return;
            };
            let Some(event) = r.client.poll_event() else {
                return;
            };
            match event {
                radius::Event::Accepted {
                    request,
                    server,
                    accept,
                } => {
                    if let Some(key) = r.auth.remove(&request) {
                        self.on_accept(now, key, server, *accept);
                    }
                }
                radius::Event::Rejected {
                    request,
                    server,
                    reject,
                } => {
                    if let Some(key) = r.auth.remove(&request) {
                        tracing::debug!(server = server.0, cause = ?reject.cause, message = %String::from_utf8_lossy(&reject.reply_message).chars().take(128).collect::<String>(), "Access-Reject");
                        let message = Some(reject.reply_message).filter(|m| !m.is_empty());
                        // MS-CHAP-Error (RFC 2548 §2.1.5) names the reason (password expired,
                        // account disabled, …): its code goes into our MS-CHAP-V2 Failure.
                        let error = reject
                            .ms_chap_error
                            .as_ref()
                            .and_then(|e| ms_chap_error_code(&e.message));
                        match (error, self.links.get_mut(&key)) {
                            (Some(code), Some(link)) => {
                                link.pending = None;
                                link.authz = None;
                                self.events.push_back(LnsEvent::AuthFailed {
                                    peer: link.peer,
                                    user: link.user.clone().unwrap_or_default(),
                                    why: "rejected by RADIUS",
                                });
                                let text = message.as_deref().and_then(ppp_text);
                                let text = text.as_deref();
                                (link.ppp).auth_reject_with_error(now, &mut self.rng, code, text);
                                self.touch(key);
                            }
                            _ => self.verdict(
                                now,
                                key,
                                Verdict::Reject,
                                "rejected by RADIUS",
                                message,
                            ),
                        }
                    }
                }
                radius::Event::Timeout { request, service } => {
                    if let Some(key) = r.auth.remove(&request) {
                        let pending = self
                            .links
                            .get_mut(&key)
                            .and_then(|l| l.pending.take())
                            .map(|p| *p);
                        if let Some((_, auth)) = pending {
                            self.fallback(now, key, &auth);
                        }
                    } else if service == radius::Service::Accounting {
                        self.events.push_back(LnsEvent::Radius {
                            what: "no RADIUS server answered an accounting record; it is lost"
                                .to_owned(),
                        });
                    }
                }
                radius::Event::ServerDead { server, service } => {
                    let name = r
                        .settings
                        .client
                        .servers
                        .get(server.0)
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    self.events.push_back(LnsEvent::Radius {
                        what: format!(
                            "RADIUS server {name} does not answer ({service:?}); trying the next"
                        ),
                    });
                }
                radius::Event::ServerAlive { server, service } => {
                    let name = r
                        .settings
                        .client
                        .servers
                        .get(server.0)
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    self.events.push_back(LnsEvent::Radius {
                        what: format!("RADIUS server {name} answers again ({service:?})"),
                    });
                }
                radius::Event::AccountingDone { .. } => {}
            }
        }
    }

    /// An Access-Accept: checks that we can honour it, keeps what it grants, and lets PPP go
    /// on. RFC 2865 §5.44: an Accept we cannot act on is treated as a Reject.
    fn on_accept(
        &mut self,
        now: Instant,
        key: (TunnelId, SessionId),
        server: radius::ServerIndex,
        accept: radius::Accept,
    ) {
        use radius::wire::{FramedProtocol, ServiceType};
        let refuse = |lns: &mut Self, why: &'static str| {
            lns.events.push_back(LnsEvent::Radius {
                what: format!("Access-Accept from server {} not honoured: {why}", server.0),
            });
            lns.verdict(now, key, Verdict::Reject, why, None);
        };
        if accept
            .service_type
            .is_some_and(|t| t != ServiceType::FRAMED)
        {
            return refuse(self, "Service-Type is not Framed");
        }
        if accept
            .framed_protocol
            .is_some_and(|p| p != FramedProtocol::PPP)
        {
            return refuse(self, "Framed-Protocol is not PPP");
        }
        let framed_pool = match &accept.framed_pool {
            Some(p) => {
                let name = String::from_utf8_lossy(p).into_owned();
                if !self.named_pools.contains_key(&name) {
                    return refuse(self, "unknown Framed-Pool");
                }
                Some(name)
            }
            None => None,
        };
        let mut filter: Option<(String, Arc<Policy>)> = None;
        for id in &accept.filter_id {
            let name = String::from_utf8_lossy(id).into_owned();
            let Some(set) = self.filters.get(&name) else {
                return refuse(self, "unknown Filter-Id");
            };
            filter = Some(match filter {
                None => (name, Arc::clone(set)),
                Some((names, before)) => (
                    format!("{names},{name}"),
                    Arc::new(Policy::new(
                        before.rules().iter().chain(set.rules()).cloned().collect(),
                    )),
                ),
            });
        }
        // RFC 2865 §5.8: 255.255.255.254 (the NAS chooses) and 255.255.255.255 (the user
        // chooses; we do not let users choose) both mean the pool.
        let framed_ip = accept
            .framed_ip_address
            .filter(|a| *a != Ipv4Addr::new(255, 255, 255, 254) && *a != Ipv4Addr::BROADCAST);
        let positive = |d: Option<Duration>| d.filter(|d| !d.is_zero());
        let settings_interim = self
            .radius
            .as_ref()
            .and_then(|r| r.settings.interim_interval);
        let interim = positive(accept.acct_interim_interval)
            .map(|d| d.max(MIN_SERVER_INTERIM))
            .or(settings_interim);
        let message = Some(accept.reply_message).filter(|m| !m.is_empty());
        let authz = Authorization {
            authentic: Authentic::Radius,
            framed_ip,
            framed_pool,
            class: accept.class,
            filter,
            session_end: positive(accept.session_timeout).map(|d| now + d),
            idle_timeout: positive(accept.idle_timeout),
            interim,
            mppe: accept.mppe,
        };
        let grant = Grant {
            authenticator_response: accept
                .ms_chap2_success
                .map(|s| AuthenticatorResponse(s.authenticator_response)),
            mppe: None,
        };
        if let Some(link) = self.links.get_mut(&key) {
            link.authz = Some(authz);
        }
        self.verdict(now, key, Verdict::Accept(grant), "", message);
    }

    /// The address for a user: RADIUS Framed-IP-Address or Framed-Pool, the users file's
    /// static address, or the pool.
    fn choose_address(
        &mut self,
        key: (TunnelId, SessionId),
        user: &str,
    ) -> Result<Ipv4Addr, &'static str> {
        let (framed_ip, framed_pool, authentic) = self
            .links
            .get(&key)
            .and_then(|l| l.authz.as_ref())
            .map_or((None, None, Authentic::Local), |a| {
                (a.framed_ip, a.framed_pool.clone(), a.authentic)
            });
        if let Some(ip) = framed_ip {
            if ip == self.config.local {
                return Err("Framed-IP-Address is the LNS's own address");
            }
            if !self.pool.contains(ip) {
                return Err("Framed-IP-Address is outside the pool (not routed here)");
            }
            return self
                .pool
                .allocate_static(ip)
                .map_err(|_| "Framed-IP-Address is in use by another session");
        }
        if let Some(name) = framed_pool {
            let named = self
                .named_pools
                .get_mut(&name)
                .ok_or("unknown Framed-Pool")?;
            for _ in 0..named.size() {
                let a = named.allocate().map_err(|_| "Framed-Pool exhausted")?;
                // Held in the general pool already (a Framed-IP-Address): it stays marked
                // here too until that session releases it.
                if self.pool.allocate_static(a).is_ok() {
                    return Ok(a);
                }
            }
            return Err("Framed-Pool exhausted");
        }
        let wanted = (authentic == Authentic::Local)
            .then(|| self.users.get(user).and_then(|u| u.address))
            .flatten();
        match wanted {
            Some(a) => self
                .pool
                .allocate_static(a)
                .map_err(|_| "static address in use"),
            None => self.pool.allocate().map_err(|_| "pool exhausted"),
        }
    }

    fn account(
        &mut self,
        now: Instant,
        key: (TunnelId, SessionId),
        status: AcctStatusType,
        cause: Option<AcctTerminateCause>,
    ) {
        if let (Some(r), Some(link)) = (self.radius.as_mut(), self.links.get(&key)) {
            record(r, link, now, status, cause);
        }
    }

    fn stop_record(&mut self, now: Instant, link: &Link, reason: DownReason) {
        if let Some(r) = self.radius.as_mut() {
            record(
                r,
                link,
                now,
                AcctStatusType::STOP,
                Some(terminate_cause(reason, link.cause)),
            );
        }
    }

    /// Handles a datagram on the Dynamic Authorization port (RFC 5176) and writes the answer
    /// into `out`. `None`: dropped without an answer (unknown source, not authentic,
    /// malformed).
    pub fn handle_dae(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let r = self.radius.as_mut()?;
        let Some(client) = r
            .settings
            .dae_clients
            .iter()
            .find(|c| c.address == from.ip())
        else {
            tracing::debug!(%from, "Disconnect/CoA from an unknown client dropped");
            return None;
        };
        let secret = client.secret.clone();
        let request =
            match DaeRequest::parse(datagram, &secret, MessageAuthenticatorPolicy::IfPresent) {
                Ok(request) => request,
                Err(e) => {
                    tracing::warn!(%from, %e, "Disconnect/CoA request dropped");
                    return None;
                }
            };
        let tag = (from, request.identifier.0, request.authenticator.0);
        if let Some((.., answer)) = r
            .dae_answers
            .iter()
            .find(|(f, i, a, _)| (*f, *i, *a) == tag)
        {
            let n = answer.len();
            out.get_mut(..n)?.copy_from_slice(answer);
            return Some(n);
        }
        let outcome = self.dae_act(now, &request);
        let what = match (&request.kind, outcome) {
            (DaeKind::Disconnect, Ok(n)) => {
                format!("Disconnect-Request from {from}: {n} session(s) ended")
            }
            (DaeKind::Coa, Ok(n)) => format!("CoA-Request from {from}: {n} session(s) changed"),
            (kind, Err(cause)) => format!("{kind:?} request from {from} refused: {cause:?}"),
        };
        self.events.push_back(LnsEvent::Radius { what });
        let written = match outcome {
            Ok(_) => radius::dae::write_ack(out, &request, &secret),
            Err(cause) => radius::dae::write_nak(out, &request, &secret, cause),
        };
        let n = written.ok()?.len();
        let r = self.radius.as_mut()?;
        if r.dae_answers.len() >= DAE_CACHE {
            r.dae_answers.pop_front();
        }
        r.dae_answers
            .push_back((tag.0, tag.1, tag.2, out[..n].to_vec()));
        self.pump(now);
        Some(n)
    }

    /// The sessions that may match `request`, from the most selective identification
    /// attribute it carries and the index for it: at most one for Framed-IP-Address, NAS-Port
    /// (the session's key) and Acct-Session-Id; a user's or a peer's sessions otherwise.
    /// [`dae_matches`] then checks every attribute.
    fn dae_candidates(&self, request: &DaeRequest<'_>) -> Vec<Key> {
        if let Some(address) = request.framed_ip_address {
            return self.by_address.get(&address).copied().into_iter().collect();
        }
        if let Some(port) = request.nas_port {
            // NAS-Port is `tunnel << 16 | session` (see `Link::nas_port`).
            let [t0, t1, s0, s1] = port.to_be_bytes();
            let key = (
                TunnelId(u16::from_be_bytes([t0, t1])),
                SessionId(u16::from_be_bytes([s0, s1])),
            );
            return Vec::from_iter(self.links.contains_key(&key).then_some(key));
        }
        if let Some(id) = request.acct_session_id {
            return self.index.by_acct_session_id(id).into_iter().collect();
        }
        if let Some(name) = request.user_name {
            return self.index.by_user(name);
        }
        if let Some(calling) = request.calling_station_id {
            return self.index.by_peer(calling);
        }
        Vec::new()
    }

    /// Finds the sessions a Disconnect/CoA request names and acts; the count acted on, or the
    /// Error-Cause of the NAK.
    fn dae_act(&mut self, now: Instant, request: &DaeRequest<'_>) -> Result<usize, ErrorCause> {
        use radius::wire::ServiceType;
        if let Some((_, cause)) = request.problem {
            return Err(cause);
        }
        if !request.identifies_a_session() {
            return Err(ErrorCause::MISSING_ATTRIBUTE);
        }
        let nas = self
            .radius
            .as_ref()
            .map(|r| r.settings.client.nas.clone())
            .unwrap_or_default();
        if request
            .nas_ip_address
            .is_some_and(|a| nas.ip_address != Some(a))
            || request
                .nas_identifier
                .is_some_and(|n| nas.identifier.as_deref() != Some(n))
        {
            return Err(ErrorCause::NAS_IDENTIFICATION_MISMATCH);
        }
        if request
            .service_type
            .is_some_and(|t| t == ServiceType::AUTHORIZE_ONLY)
        {
            return Err(ErrorCause::UNSUPPORTED_SERVICE);
        }
        let filter = match request.filter_id {
            Some(id) => {
                let name = String::from_utf8_lossy(id).into_owned();
                let set = self
                    .filters
                    .get(&name)
                    .ok_or(ErrorCause::INVALID_ATTRIBUTE_VALUE)?;
                Some((name, Arc::clone(set)))
            }
            None => None,
        };
        let mut keys = self.dae_candidates(request);
        #[cfg(test)]
        {
            self.dae_visits += keys.len() as u64;
        }
        keys.retain(|key| {
            self.links.get(key).is_some_and(|l| {
                l.user.is_some()
                    && l.authz.is_some()
                    && l.cause.is_none()
                    && dae_matches(request, l)
            })
        });
        if keys.is_empty() {
            return Err(ErrorCause::SESSION_CONTEXT_NOT_FOUND);
        }
        for key in &keys {
            let Some(link) = self.links.get_mut(key) else {
                continue;
            };
            match request.kind {
                DaeKind::Disconnect => {
                    link.cause = Some(AcctTerminateCause::ADMIN_RESET);
                    link.ppp.close(now);
                }
                DaeKind::Coa => {
                    let Some(a) = link.authz.as_mut() else {
                        continue;
                    };
                    if let Some(t) = request.session_timeout {
                        a.session_end = (t > 0).then(|| now + Duration::from_secs(u64::from(t)));
                    }
                    if let Some(t) = request.idle_timeout {
                        a.idle_timeout = (t > 0).then(|| Duration::from_secs(u64::from(t)));
                    }
                    if let Some(t) = request.acct_interim_interval {
                        let interim = (t > 0)
                            .then(|| Duration::from_secs(u64::from(t)).max(MIN_SERVER_INTERIM));
                        a.interim = interim;
                        if let Some(acct) = link.accounting.as_mut() {
                            acct.next_interim = interim.map(|i| now + i);
                        }
                    }
                    if filter.is_some() {
                        a.filter.clone_from(&filter);
                    }
                }
            }
            // Its deadlines may have moved earlier.
            self.touch(*key);
        }
        Ok(keys.len())
    }
}

/// Whether `link` has every session identification attribute `request` carries (RFC 5176
/// §3: all of them must match).
fn dae_matches(request: &DaeRequest<'_>, l: &Link) -> bool {
    request
        .user_name
        .is_none_or(|u| l.user.as_deref().map(str::as_bytes) == Some(u))
        && request.acct_session_id.is_none_or(|s| {
            l.acct_session_id
                .as_ref()
                .is_some_and(|o| same_session_id(o, s))
        })
        && request
            .framed_ip_address
            .is_none_or(|a| l.address == Some(a))
        && request
            .calling_station_id
            .is_none_or(|c| c == l.peer.ip().to_string().as_bytes())
        && request.nas_port.is_none_or(|p| p == l.nas_port)
}

/// Writes one accounting record of `link` (RFC 2866 §5): its identity, its address, and for
/// Interim-Update and Stop its time and traffic.
fn record(
    r: &mut Radius,
    link: &Link,
    now: Instant,
    status: AcctStatusType,
    cause: Option<AcctTerminateCause>,
) {
    if !r.settings.accounting {
        return;
    }
    let Some(id) = link.acct_session_id else {
        return;
    };
    let mut q = AccountingRequest::new(status, id);
    q.user_name = link.user.as_ref().map(|u| u.as_bytes().to_vec());
    q.nas_port = Some(link.nas_port);
    q.framed_ip_address = link.address;
    q.calling_station_id = Some(link.peer.ip().to_string().into_bytes());
    q.called_station_id
        .clone_from(&r.settings.called_station_id);
    if let Some(a) = &link.authz {
        q.class.clone_from(&a.class);
        q.authentic = Some(match a.authentic {
            Authentic::Radius => AcctAuthentic::RADIUS,
            Authentic::Local => AcctAuthentic::LOCAL,
        });
    }
    if status != AcctStatusType::START {
        q.session_time = link
            .accounting
            .map(|a| now.saturating_duration_since(a.started));
        q.counters = Some(link.traffic.counters);
    }
    q.terminate_cause = cause;
    q.event_timestamp = r.event_timestamp(now);
    if let Err(e) = r.client.account(now, q) {
        tracing::warn!(%e, "RADIUS accounting record not sent");
    }
}

/// The error code of an MS-CHAP-Error text such as `E=648 R=0 C=… V=3` (RFC 2759 §6).
fn ms_chap_error_code(text: &[u8]) -> Option<u32> {
    let digits = text.strip_prefix(b"E=")?;
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    core::str::from_utf8(&digits[..end.min(10)])
        .ok()?
        .parse()
        .ok()
}

/// A RADIUS Reply-Message as text for the PPP peer: UTF-8 (invalid sequences replaced),
/// control characters as spaces; `None` when nothing printable is left.
fn ppp_text(message: &[u8]) -> Option<String> {
    let text: String = String::from_utf8_lossy(message)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The PPP proof as RADIUS carries it.
fn credentials(proof: &Proof) -> Credentials {
    match proof {
        Proof::Pap { password } => {
            Credentials::Pap(radius::crypto::Password::new(password.expose()))
        }
        Proof::ChapMd5 {
            identifier,
            challenge,
            response,
        } => Credentials::ChapMd5 {
            ident: *identifier,
            challenge: challenge.to_vec(),
            response: *response,
        },
        Proof::MsChapV2 {
            identifier,
            authenticator_challenge,
            peer_challenge,
            nt_response,
        } => Credentials::MsChapV2 {
            ident: *identifier,
            authenticator_challenge: *authenticator_challenge,
            peer_challenge: *peer_challenge,
            nt_response: *nt_response,
        },
    }
}

/// The Result Code of the CDN that ends a call whose PPP went down for `reason` (RFC 2661
/// §4.4.2). "Administrative reasons" (3) only when someone decided the session must end: an
/// operator's kick (or the user's removal at a reload), a RADIUS Disconnect-Request (both
/// Admin-Reset), or the user hanging up; a client may take it as final. A lost peer is loss of
/// carrier, no address a temporary lack of facilities, and the rest (Session-Timeout,
/// Idle-Timeout, failed authentication or negotiation) a general error, after which a client
/// may well try again.
fn cdn_result(reason: DownReason, cause: Option<AcctTerminateCause>) -> CdnResult {
    if cause == Some(AcctTerminateCause::ADMIN_RESET) {
        return CdnResult::ADMINISTRATIVE;
    }
    match reason {
        DownReason::PeerTerminated => CdnResult::ADMINISTRATIVE,
        DownReason::EchoTimeout | DownReason::LowerLayerDown => CdnResult::LOST_CARRIER,
        DownReason::NoAddress => CdnResult::TEMPORARY_LACK_OF_FACILITIES,
        DownReason::Closed
        | DownReason::AuthFailed
        | DownReason::AuthTimeout
        | DownReason::NoCommonAuth
        | DownReason::ServerNotAuthenticated
        | DownReason::NegotiationFailed(_)
        | DownReason::LoopedBack => CdnResult::GENERAL_ERROR,
    }
}

/// Whether the LAC's CDN says the call ended in an orderly way (the user hung up or an
/// administrator cleared it) rather than by a failure.
fn peer_hung_up_session(reason: l2tp::SessionDownReason) -> bool {
    matches!(
        reason,
        l2tp::SessionDownReason::Disconnected {
            origin: l2tp::Origin::Peer,
            result: CdnResult::ADMINISTRATIVE,
            ..
        }
    )
}

pub mod admin;
mod index;
#[cfg(test)]
mod tests;
