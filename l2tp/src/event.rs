//! What the tunnel and session machines tell their driver (RFC 2661 §7 transitions that matter
//! outside the control channel).

use crate::wire::message::{
    Accm, CdnResult, ErrorCode, FramingType, Iccn, ProxyAuthenType, StopCcnResult,
};
use crate::{SessionId, TunnelId};
use std::net::SocketAddr;

/// Which side ended a tunnel or a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// We sent the StopCCN or CDN.
    Local,
    /// The peer did.
    Peer,
}

/// Why a tunnel went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelDownReason {
    /// StopCCN was sent (`Local`) or received (`Peer`) with this Result Code (RFC 2661 §4.4.2).
    Stopped {
        /// Who sent the StopCCN.
        origin: Origin,
        /// The Result Code.
        result: StopCcnResult,
        /// The optional Error Code.
        error: Option<ErrorCode>,
    },
    /// A control message went unacknowledged through every retransmission (RFC 2661 §5.8):
    /// the peer is gone. No StopCCN is sent.
    PeerUnresponsive,
    /// The tunnel did not reach the established state within the setup timeout; StopCCN sent.
    SetupTimeout,
    /// Our SCCRQ lost the tie breaker against the peer's (RFC 2661 §4.4.3); the peer's tunnel
    /// is used instead. Nothing is sent.
    TieBreakerLost,
}

/// Why a call went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionDownReason {
    /// CDN was sent (`Local`) or received (`Peer`) with this Result Code (RFC 2661 §4.4.2).
    Disconnected {
        /// Who sent the CDN.
        origin: Origin,
        /// The Result Code.
        result: CdnResult,
        /// The optional Error Code.
        error: Option<ErrorCode>,
    },
    /// The call did not reach the established state within the setup timeout; CDN sent.
    SetupTimeout,
    /// The tunnel carrying it went down.
    TunnelDown,
}

/// Proxy LCP and proxy authentication AVPs of an ICCN (RFC 2661 §4.4.5), copied out of the
/// message. Each value is bounded by the AVP length limit (1017 octets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    /// Initial Received LCP CONFREQ: the options of the first Configure-Request the LAC got.
    pub initial_received_lcp_confreq: Option<Vec<u8>>,
    /// Last Sent LCP CONFREQ.
    pub last_sent_lcp_confreq: Option<Vec<u8>>,
    /// Last Received LCP CONFREQ.
    pub last_received_lcp_confreq: Option<Vec<u8>>,
    /// Proxy Authen Type.
    pub authen_type: Option<ProxyAuthenType>,
    /// Proxy Authen Name.
    pub authen_name: Option<Vec<u8>>,
    /// Proxy Authen Challenge.
    pub authen_challenge: Option<Vec<u8>>,
    /// Proxy Authen ID (the PPP identifier).
    pub authen_id: Option<u8>,
    /// Proxy Authen Response (revealed, when it was hidden and we hold the secret).
    pub authen_response: Option<Vec<u8>>,
}

impl Proxy {
    pub(crate) fn from_iccn(iccn: &Iccn<'_>) -> Self {
        let own = |v: Option<&[u8]>| v.map(<[u8]>::to_vec);
        Self {
            initial_received_lcp_confreq: own(iccn.initial_received_lcp_confreq),
            last_sent_lcp_confreq: own(iccn.last_sent_lcp_confreq),
            last_received_lcp_confreq: own(iccn.last_received_lcp_confreq),
            authen_type: iccn.proxy_authen_type,
            authen_name: own(iccn.proxy_authen_name),
            authen_challenge: own(iccn.proxy_authen_challenge),
            authen_id: iccn.proxy_authen_id.map(|id| id.0),
            authen_response: own(iccn.proxy_authen_response),
        }
    }

    /// Whether the LAC sent no proxy AVPs at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A call reached the established state (LNS: ICCN received; LAC: ICCN sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUp {
    /// The peer's transport address.
    pub peer: SocketAddr,
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// Our session ID (in the header of what the peer sends).
    pub session: SessionId,
    /// The peer's session ID (in the header of what we send).
    pub peer_session: SessionId,
    /// The Call Serial Number of the ICRQ.
    pub call_serial_number: u32,
    /// The Tx Connect Speed of the ICCN, bits per second.
    pub tx_connect_speed: u32,
    /// The Framing Type of the ICCN.
    pub framing_type: FramingType,
    /// Whether the LAC asked for sequence numbers on data messages (RFC 2661 §4.4.6).
    pub sequencing_required: bool,
    /// Proxy LCP and authentication data from the ICCN (empty on the LAC side).
    pub proxy: Proxy,
}

/// What an [`crate::Endpoint`] or [`crate::Tunnel`] reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The control connection is established (LNS: SCCCN received; LAC: SCCCN sent).
    TunnelUp {
        /// The peer's transport address.
        peer: SocketAddr,
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// The peer's tunnel ID.
        peer_tunnel: TunnelId,
        /// The peer's Host Name AVP.
        peer_host_name: Vec<u8>,
    },
    /// The control connection is gone (emitted once, when StopCCN is sent or received or the
    /// peer is given up; the endpoint forgets the tunnel after the hold period).
    TunnelDown {
        /// The peer's transport address.
        peer: SocketAddr,
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// Why.
        reason: TunnelDownReason,
        /// The peer's Host Name AVP (empty when it never sent one).
        peer_host_name: Vec<u8>,
    },
    /// A call is established: PPP may run over it.
    SessionUp(SessionUp),
    /// A call is gone (emitted once per call, including calls that never came up).
    SessionDown {
        /// The peer's transport address.
        peer: SocketAddr,
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// Our session ID.
        session: SessionId,
        /// The peer's session ID (0 when never learnt).
        peer_session: SessionId,
        /// Why.
        reason: SessionDownReason,
    },
    /// The LAC sent Set-Link-Info (RFC 2661 §6.14). We do no HDLC framing, so the ACCM is
    /// reported only.
    SetLinkInfo {
        /// The peer's transport address.
        peer: SocketAddr,
        /// Our tunnel ID.
        tunnel: TunnelId,
        /// Our session ID.
        session: SessionId,
        /// The ACCM values.
        accm: Accm,
    },
}
