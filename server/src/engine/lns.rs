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

use crate::engine::policy::{Drop as PolicyDrop, Policy};
use crate::engine::pool::Pool;
use crate::users::{Credential as StoredCredential, Users};
use l2tp::wire::message::{CdnResult, StopCcnResult};
use l2tp::{DataPath, Received, SessionId, TunnelId};
use ppp::auth::{Credential, Method, NtHash, Password, Verdict};
use ppp::ipcp::Assignment;
use ppp::wire::Protocol;
use ppp::{DownReason, Event as PppEvent, Session};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

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
    },
    /// Authentication failed (rate-limit these in logs).
    AuthFailed {
        /// Transport identity of the peer.
        peer: SocketAddr,
        /// The name presented.
        user: String,
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
    ppp: Session<ChaCha20Rng>,
    peer: SocketAddr,
    data: Option<DataPath>,
    user: Option<String>,
    method: Option<Method>,
    address: Option<Ipv4Addr>,
}

/// The LNS layer. Sans-IO: see the module docs.
#[derive(Debug)]
pub struct Lns<R> {
    config: LnsConfig,
    l2tp: l2tp::Endpoint<ChaCha20Rng>,
    links: BTreeMap<(TunnelId, SessionId), Link>,
    by_address: BTreeMap<Ipv4Addr, (TunnelId, SessionId)>,
    pool: Pool,
    users: Users,
    policy: Policy,
    rng: R,
    events: VecDeque<LnsEvent>,
    stats: LnsStats,
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
            pool,
            users,
            policy,
            rng,
            events: VecDeque::new(),
            stats: LnsStats::default(),
        }
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
        self.pump(now);
        let Received::Data(data) = received? else {
            return Ok(None);
        };
        let link = self
            .links
            .get_mut(&(data.tunnel, data.session))
            .ok_or(Drop::NoSession)?;
        let frame = &datagram[data.frame.clone()];
        let result = link.ppp.handle_frame(now, frame).map_err(Drop::Ppp);
        let packet = match result {
            Ok(ppp::Received::Ipv4(ip)) => {
                // The packet is a sub-slice of the frame: compute its range in `datagram`.
                let offset = data.frame.start + (ip.as_ptr() as usize - frame.as_ptr() as usize);
                Some(offset..offset + ip.len())
            }
            Ok(_) => None,
            Err(e) => {
                self.pump(now);
                return Err(e);
            }
        };
        let address = link.address;
        self.pump(now);
        let Some(range) = packet else { return Ok(None) };
        let flow = self
            .policy
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
        if Some(flow.src) != address {
            self.stats.spoofed += 1;
            return Err(Drop::Spoofed);
        }
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
        let flow = self.policy.check_inbound(ip).map_err(|e| {
            self.stats.policy_in += 1;
            match e {
                PolicyDrop::Malformed => Drop::Malformed,
                PolicyDrop::NoRule => Drop::Policy,
            }
        })?;
        let Some(key) = self.by_address.get(&flow.dst) else {
            self.stats.no_route += 1;
            return Err(Drop::NoRoute);
        };
        let link = self.links.get(key).ok_or(Drop::NoRoute)?;
        let data = link.data.ok_or(Drop::NoSession)?;
        let frame = link
            .ppp
            .encapsulate(Protocol::IPV4, buf, packet)
            .map_err(Drop::Ppp)?;
        let datagram = data.encapsulate(buf, frame).map_err(|_| Drop::Malformed)?;
        Ok((data.peer, datagram))
    }

    /// Writes the next control datagram (L2TP control, or PPP control inside L2TP data) and
    /// returns its peer and length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        if let Some(t) = self.l2tp.poll_transmit(now, buf) {
            return Some((t.peer, t.len));
        }
        for link in self.links.values_mut() {
            let Some(data) = link.data else { continue };
            let space = buf.get_mut(HEADROOM..)?;
            if let Some(n) = link.ppp.poll_transmit(space) {
                let range = data.encapsulate(buf, HEADROOM..HEADROOM + n).ok()?;
                buf.copy_within(range.clone(), 0);
                return Some((data.peer, range.len()));
            }
        }
        None
    }

    /// The earliest deadline of L2TP and every PPP session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| l.ppp.poll_timeout())
            .chain(self.l2tp.poll_timeout())
            .min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.l2tp.handle_timeout(now);
        for link in self.links.values_mut() {
            if link.ppp.poll_timeout().is_some_and(|t| t <= now) {
                link.ppp.handle_timeout(now);
            }
        }
        self.pump(now);
    }

    /// The IPsec layer lost the peer (DPD, delete): every session of it ends.
    pub fn peer_gone(&mut self, now: Instant, peer: SocketAddr) {
        let tunnels: Vec<TunnelId> = self
            .links
            .iter()
            .filter(|(_, l)| l.peer == peer)
            .map(|(k, _)| k.0)
            .collect();
        for t in tunnels {
            let _ = self
                .l2tp
                .close_tunnel(now, t, StopCcnResult::GENERAL_REQUEST, None);
        }
        self.pump(now);
    }

    /// Moves events between the layers until nothing is left to do.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            while let Some(event) = self.l2tp.poll_event() {
                progress = true;
                self.on_l2tp(now, event);
            }
            let keys: Vec<(TunnelId, SessionId)> = self.links.keys().copied().collect();
            for key in keys {
                while let Some(event) = self.links.get_mut(&key).and_then(|l| l.ppp.poll_event()) {
                    progress = true;
                    self.on_ppp(now, key, event);
                }
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
                let rng = ChaCha20Rng::from_rng(&mut self.rng);
                let ppp = Session::server(Arc::clone(&self.config.ppp), rng, now);
                let data = self.l2tp.data_path(up.tunnel, up.session);
                self.links.insert(
                    (up.tunnel, up.session),
                    Link {
                        ppp,
                        peer: up.peer,
                        data,
                        user: None,
                        method: None,
                        address: None,
                    },
                );
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
                    self.release(link, reason);
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
                    .keys()
                    .filter(|k| k.0 == tunnel)
                    .copied()
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
                for key in gone {
                    if let Some(mut link) = self.links.remove(&key) {
                        link.ppp.lower_layer_down(now);
                        let mut reason = why;
                        while let Some(event) = link.ppp.poll_event() {
                            if let PppEvent::Down(DownReason::PeerTerminated) = event {
                                reason = DownReason::PeerTerminated;
                            }
                        }
                        self.release(link, reason);
                    }
                }
            }
            _ => {}
        }
    }

    fn release(&mut self, link: Link, reason: DownReason) {
        if let Some(a) = link.address {
            self.by_address.remove(&a);
            self.pool.release(a);
        }
        self.events.push_back(LnsEvent::Disconnected {
            peer: link.peer,
            user: link.user,
            address: link.address,
            reason,
        });
    }

    fn on_ppp(&mut self, now: Instant, key: (TunnelId, SessionId), event: PppEvent) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        match event {
            PppEvent::AuthRequest(request) => {
                let verdict = match self.users.get(&request.user) {
                    Some(user) => request.verify(&credential(&user.credential)),
                    None => Verdict::Reject,
                };
                if verdict == Verdict::Reject {
                    self.events.push_back(LnsEvent::AuthFailed {
                        peer: link.peer,
                        user: request.user.clone(),
                    });
                }
                link.ppp.auth_verdict(now, verdict);
            }
            PppEvent::Authenticated { user, method, .. } => {
                link.user = Some(user);
                link.method = Some(method);
            }
            PppEvent::AddressRequest { user } => {
                let wanted = self.users.get(&user).and_then(|u| u.address);
                let address = match wanted {
                    Some(a) => self.pool.allocate_static(a).ok(),
                    None => self.pool.allocate().ok(),
                };
                match address {
                    Some(address) => {
                        link.address = Some(address);
                        self.by_address.insert(address, key);
                        let assignment = Assignment {
                            local: self.config.local,
                            peer: address,
                            dns: self.config.dns,
                            nbns: [None; 2],
                        };
                        link.ppp.assign_address(now, assignment);
                    }
                    None => link.ppp.refuse_address(now),
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
            }
            PppEvent::Down(reason) => {
                // PPP is finished: the L2TP session goes too (CDN), and the address returns.
                let _ = self
                    .l2tp
                    .close_session(now, key.0, key.1, CdnResult::ADMINISTRATIVE, None);
                if let Some(link) = self.links.remove(&key) {
                    self.release(link, reason);
                }
            }
            _ => {}
        }
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

#[cfg(test)]
mod tests;
