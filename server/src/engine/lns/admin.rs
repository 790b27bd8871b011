//! Operator actions on the LNS layer (the control socket's `status`, `kick` and `reload`):
//! a snapshot of every session, ending a user's sessions cleanly, and the parts of a
//! reloaded configuration this layer owns (users, pool, policy, DNS).
//!
//! A kicked session ends the way a clean hang-up does, so the client notices at once:
//!
//! ```text
//! kick ─▶ LCP Terminate-Request ─▶ (Terminate-Ack or PPP's own timeout) ─▶ CDN, address freed,
//!         RADIUS Stop (Admin-Reset)
//!      ─▶ last session of its tunnel: StopCCN ─▶ last tunnel of its peer: after KICK_GRACE,
//!         the IPsec layer deletes the peer's IKE SA (ESP and ISAKMP Delete)
//! ```
//!
//! Sans-IO like the rest of the engine: the driver passes `now` and the wall-clock time.

use super::{
    AcctTerminateCause, Authentic, Instant, Ipv4Addr, Lns, Method, Policy, Pool, SocketAddr,
    StopCcnResult, TunnelId, Users,
};
use l2tp::SessionId;
use rand_core::CryptoRng;
use std::collections::BTreeSet;
use std::time::Duration;
use timer::TimerQueue;

/// How long a kicked peer's StopCCN has to be acknowledged (through the still-living ESP SA)
/// before its IKE SA is deleted; as at a clean stop of the server.
pub const KICK_GRACE: Duration = Duration::from_secs(1);

/// Kick bookkeeping. Bounded by the tunnels and peers that exist (each entry names one).
#[derive(Debug, Default)]
pub(super) struct Admin {
    /// Tunnels with a kicked session: closed with StopCCN once their last session is gone.
    kicked: BTreeSet<TunnelId>,
    /// Peers whose last tunnel was kicked, and when their IKE SAs are deleted (one entry per
    /// peer).
    ike_close: TimerQueue<SocketAddr, Instant>,
    /// Peers whose IKE SAs are due for deletion, for the IPsec layer.
    ike_due: Vec<SocketAddr>,
}

/// Whose sessions `kick` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickTarget {
    /// Every session of this user.
    User(String),
    /// The session holding this address.
    Address(Ipv4Addr),
}

impl KickTarget {
    /// An IPv4 address names the session holding it; anything else is a user name.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        text.parse()
            .map_or_else(|_| Self::User(text.to_owned()), Self::Address)
    }
}

impl std::fmt::Display for KickTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(u) => write!(f, "user {u:?}"),
            Self::Address(a) => write!(f, "address {a}"),
        }
    }
}

/// One session as `l2sec-server status` shows it. The field names are the stable JSON names
/// of `status --json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionStatus {
    /// The user (the name presented while authentication is in progress).
    pub user: Option<String>,
    /// The address assigned through IPCP.
    pub address: Option<Ipv4Addr>,
    /// The peer's public address and port (its NAT's, when behind one).
    pub peer: SocketAddr,
    /// Whether a NAT was detected between the peer and us (ESP in UDP 4500).
    pub nat: bool,
    /// The IKE (phase 1) suite, as `l2sec-client status` writes it (`aes256-sha1-modp2048`).
    pub ike: Option<String>,
    /// The ESP transform, as `l2sec-client status` writes it (`aes128gcm16`, `aes256-sha1`).
    pub esp: Option<String>,
    /// The PPP authentication method (`MS-CHAPv2`, `CHAP-MD5`, `PAP`).
    pub auth: Option<String>,
    /// `connected`, `authenticating` (no address yet) or `closing` (being ended).
    pub state: String,
    /// Our L2TP tunnel ID.
    pub tunnel_id: u16,
    /// Our L2TP session ID.
    pub session_id: u16,
    /// IP bytes from the user (that passed the policy).
    pub bytes_in: u64,
    /// IP bytes to the user.
    pub bytes_out: u64,
    /// IP packets from the user.
    pub packets_in: u64,
    /// IP packets to the user.
    pub packets_out: u64,
    /// When the address came up, seconds since 1970.
    pub connected_since_unix: Option<u64>,
    /// The same, as RFC 3339 (UTC).
    pub connected_since: Option<String>,
    /// Seconds since the last packet from the user (or since the address came up).
    pub last_activity_secs: Option<u64>,
}

/// What the LNS layer takes from a reloaded configuration.
#[derive(Debug)]
pub struct LnsReload {
    /// The users file.
    pub users: Users,
    /// The general pool, built from the new range with the new users' static addresses
    /// reserved; the addresses held now are carried over into it.
    pub pool: Pool,
    /// The general policy (applies to every session's next packet).
    pub policy: Policy,
    /// DNS servers offered to new sessions.
    pub dns: [Option<Ipv4Addr>; 2],
}

/// A reload the LNS layer refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The new pool range does not hold an address a session holds now.
    #[error(
        "pool.range no longer holds {address}, held by {user}: shrinking below a live address is refused (end that session first)"
    )]
    PoolShrinks {
        /// The address.
        address: Ipv4Addr,
        /// Its holder.
        user: String,
    },
}

/// The name of a PPP authentication method as users know it (as `l2sec-client status`).
const fn method_name(method: Method) -> &'static str {
    match method {
        Method::Pap => "PAP",
        Method::ChapMd5 => "CHAP-MD5",
        Method::MsChapV2 => "MS-CHAPv2",
    }
}

fn rfc3339(unix: u64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(unix);
    humantime_serde::re::humantime::format_rfc3339_seconds(at).to_string()
}

impl<R: CryptoRng> Lns<R> {
    /// Every session, in tunnel and session order. `unix_now` is the wall-clock time (seconds
    /// since 1970) at `now`. The IPsec layer fills in the IKE and ESP fields and the peer's
    /// current public address.
    #[must_use]
    pub fn status(&self, now: Instant, unix_now: u64) -> Vec<SessionStatus> {
        self.links
            .iter()
            .map(|(key, link)| {
                let since = link
                    .up_at
                    .map(|t| unix_now.saturating_sub(now.saturating_duration_since(t).as_secs()));
                let last = link.traffic.last_activity.or(link.up_at);
                let state = if link.cause.is_some() {
                    "closing"
                } else if link.address.is_some() && link.up_at.is_some() {
                    "connected"
                } else {
                    "authenticating"
                };
                let c = link.traffic.counters;
                SessionStatus {
                    user: link.user.clone(),
                    address: link.address,
                    peer: link.peer,
                    nat: false,
                    ike: None,
                    esp: None,
                    auth: link.method.map(|m| method_name(m).to_owned()),
                    state: state.to_owned(),
                    tunnel_id: key.0.0,
                    session_id: key.1.0,
                    bytes_in: c.input_octets,
                    bytes_out: c.output_octets,
                    packets_in: c.input_packets,
                    packets_out: c.output_packets,
                    connected_since_unix: since,
                    connected_since: since.map(rfc3339),
                    last_activity_secs: last.map(|t| now.saturating_duration_since(t).as_secs()),
                }
            })
            .collect()
    }

    /// Ends the sessions `target` names: LCP Terminate-Request now; when PPP is down the
    /// call gets its CDN, the address goes back to the pool and RADIUS gets a Stop with
    /// Acct-Terminate-Cause Admin-Reset; a tunnel left without calls gets StopCCN, and a peer
    /// left without tunnels loses its IKE SA [`KICK_GRACE`] later. Returns how many sessions
    /// were told to end (sessions already ending are not counted again).
    pub fn kick(&mut self, now: Instant, target: &KickTarget) -> usize {
        // Candidates from the indexes, each checked again below.
        let candidates: Vec<_> = match target {
            KickTarget::User(u) => self.index.by_user(u.as_bytes()),
            KickTarget::Address(a) => self.by_address.get(a).copied().into_iter().collect(),
        };
        let mut kicked = Vec::new();
        for key in candidates {
            let Some(link) = self.links.get_mut(&key) else {
                continue;
            };
            let named = match target {
                KickTarget::User(u) => link.user.as_deref() == Some(u.as_str()),
                KickTarget::Address(a) => link.address == Some(*a),
            };
            if !named || link.cause.is_some() {
                continue;
            }
            tracing::info!(peer = %link.peer, user = link.user.as_deref().unwrap_or("-"), address = ?link.address, tunnel = key.0.0, session = key.1.0, "session kicked by the operator");
            link.cause = Some(AcctTerminateCause::ADMIN_RESET);
            link.ppp.close(now);
            self.admin.kicked.insert(key.0);
            kicked.push(key);
        }
        // Their PPP has a Terminate-Request to send and a new deadline.
        for key in &kicked {
            self.touch(*key);
        }
        self.pump(now);
        kicked.len()
    }

    /// Takes what a reload changes in this layer, or refuses the whole of it (then nothing
    /// changed). Live sessions keep their addresses and authorisation; the policy applies to
    /// their next packet, DNS to new sessions. Sessions of users authenticated from the users
    /// file who are no longer in it are kicked; their names are returned.
    ///
    /// # Errors
    /// [`ReloadError`]: the new pool would not hold an address in use.
    pub fn reload(&mut self, now: Instant, new: LnsReload) -> Result<Vec<String>, ReloadError> {
        let LnsReload {
            users,
            mut pool,
            policy,
            dns,
        } = new;
        for link in self.links.values() {
            let Some(a) = link.address else { continue };
            if !pool.contains(a) {
                return Err(ReloadError::PoolShrinks {
                    address: a,
                    user: link.user.clone().unwrap_or_else(|| "-".to_owned()),
                });
            }
        }
        for link in self.links.values() {
            if let Some(a) = link.address {
                // Every held address is in the range (checked above) and held once.
                let _ = pool.allocate_static(a);
            }
        }
        self.pool = pool;
        self.policy = policy;
        self.config.dns = dns;
        let mut removed: Vec<String> = self
            .links
            .values()
            .filter(|l| l.cause.is_none() && l.method.is_some())
            .filter(|l| {
                l.authz
                    .as_ref()
                    .is_some_and(|a| a.authentic == Authentic::Local)
            })
            .filter_map(|l| l.user.as_ref())
            .filter(|u| users.get(u).is_none())
            .cloned()
            .collect();
        removed.sort();
        removed.dedup();
        self.users = users;
        for user in &removed {
            tracing::info!(%user, "user removed from the users file: kicking their sessions");
            self.kick(now, &KickTarget::User(user.clone()));
        }
        Ok(removed)
    }

    /// After a session is released: a kicked tunnel left without calls gets StopCCN, and a
    /// peer left without sessions has its IKE SA deleted [`KICK_GRACE`] later. O(log n): the
    /// session table is ordered by tunnel, and the peer index answers for the peer.
    pub(super) fn after_release(&mut self, now: Instant, tunnel: TunnelId, peer: SocketAddr) {
        if !self.admin.kicked.contains(&tunnel) || self.has_sessions(tunnel) {
            return;
        }
        self.admin.kicked.remove(&tunnel);
        let _ = self
            .l2tp
            .close_tunnel(now, tunnel, StopCcnResult::GENERAL_REQUEST, None);
        if !self.index.has_peer(peer) && self.admin.ike_close.get(peer).is_none() {
            self.admin.ike_close.set(peer, Some(now + KICK_GRACE));
        }
    }

    /// Whether `tunnel` has a call left.
    fn has_sessions(&self, tunnel: TunnelId) -> bool {
        self.links
            .range((tunnel, SessionId(0))..=(tunnel, SessionId(u16::MAX)))
            .next()
            .is_some()
    }

    /// Peers waiting for their IKE SAs to be deleted.
    #[cfg(test)]
    pub(super) fn closing_peers(&self) -> usize {
        self.admin.ike_close.len()
    }

    /// The earliest kick deadline.
    pub(super) fn admin_deadline(&self) -> Option<Instant> {
        self.admin.ike_close.earliest()
    }

    /// Moves kicked peers whose grace is over to the IPsec layer's list.
    pub(super) fn admin_timeout(&mut self, now: Instant) {
        while let Some(peer) = self.admin.ike_close.pop_due(&now) {
            self.admin.ike_due.push(peer);
        }
    }

    /// The next kicked peer whose IKE SAs the IPsec layer must delete now: one that has not
    /// come back (no new session) meanwhile.
    pub(crate) fn next_kicked_peer(&mut self) -> Option<SocketAddr> {
        while let Some(peer) = self.admin.ike_due.pop() {
            if !self.index.has_peer(peer) {
                return Some(peer);
            }
        }
        None
    }

    /// A kicked peer negotiated a new IKE SA (it reconnected): its pending IKE deletion is
    /// cancelled, so that the new SA is not deleted with the old one.
    pub(crate) fn forget_kicked_peer(&mut self, peer: SocketAddr) {
        self.admin.ike_close.remove(peer);
        self.admin.ike_due.retain(|p| *p != peer);
    }
}
