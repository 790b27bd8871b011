//! What the LNS keeps for RADIUS (RFC 2865, RFC 2866, RFC 5176): the settings, the
//! authorization an Access-Accept granted a session, and its accounting state. The
//! [`radius::Client`] itself lives in [`super::lns::Lns`], which owns the sessions.

use super::policy::Policy;
use radius::wire::AcctTerminateCause;
use radius::{AcctSessionId, Counters};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which users the local users file answers for and which go to RADIUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// A user in the local file is checked there, and only there; the rest go to RADIUS.
    LocalFirst,
    /// Everybody goes to RADIUS.
    RadiusOnly,
    /// Everybody goes to RADIUS; when no server answers, the local file decides.
    RadiusFirst,
}

/// A Dynamic Authorization client (RFC 5176) allowed to send Disconnect and CoA requests.
#[derive(Debug, Clone)]
pub struct DaeClient {
    /// The address its requests come from.
    pub address: IpAddr,
    /// Its shared secret.
    pub secret: radius::crypto::Secret,
}

/// RADIUS settings of the LNS.
#[derive(Debug, Clone)]
pub struct RadiusSettings {
    /// Servers, NAS identity, timeouts.
    pub client: radius::Config,
    /// Local file or RADIUS first.
    pub order: Order,
    /// Send accounting records.
    pub accounting: bool,
    /// Interim-Update interval when the server sends no Acct-Interim-Interval.
    pub interim_interval: Option<Duration>,
    /// Called-Station-Id: our address as the clients dial it.
    pub called_station_id: Option<Vec<u8>>,
    /// Who may send Disconnect-Request and CoA-Request.
    pub dae_clients: Vec<DaeClient>,
    /// Tags this run's Acct-Session-Ids (differs between runs: the start time).
    pub boot: u64,
}

/// RFC 2869 §5.16: an Acct-Interim-Interval from the server below 60 s is raised to 60 s.
pub const MIN_SERVER_INTERIM: Duration = Duration::from_secs(60);

/// How a session's user was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentic {
    /// By a RADIUS server.
    Radius,
    /// By the local users file.
    Local,
}

/// The authorization and accounting state of one session.
#[derive(Debug)]
pub struct Authorization {
    /// Who authenticated the user.
    pub authentic: Authentic,
    /// Framed-IP-Address: the address the user must get.
    pub framed_ip: Option<std::net::Ipv4Addr>,
    /// Framed-Pool: the named pool to draw the address from.
    pub framed_pool: Option<String>,
    /// Class attributes to echo in accounting.
    pub class: Vec<Vec<u8>>,
    /// Filter-Id rule set, replacing the general policy for this session.
    pub filter: Option<(String, Arc<Policy>)>,
    /// Session-Timeout: when the session ends.
    pub session_end: Option<Instant>,
    /// Idle-Timeout.
    pub idle_timeout: Option<Duration>,
    /// Interim-Update interval.
    pub interim: Option<Duration>,
    /// MS-MPPE-Send-Key and MS-MPPE-Recv-Key, kept for the session (zeroized on drop). Our PPP
    /// runs no MPPE (ESP encrypts L2TP/IPsec), and RADIUS sends only the two start keys, not
    /// the master key PPP's own `MppeKeys` holds, so they stay here.
    pub mppe: Option<radius::MppeKeys>,
}

impl Authorization {
    /// What a locally authenticated user gets: nothing from RADIUS.
    pub const fn local(interim: Option<Duration>) -> Self {
        Self {
            authentic: Authentic::Local,
            framed_ip: None,
            framed_pool: None,
            class: Vec::new(),
            filter: None,
            session_end: None,
            idle_timeout: None,
            interim,
            mppe: None,
        }
    }
}

/// Accounting of a session whose address is up (Start sent).
#[derive(Debug, Clone, Copy)]
pub struct Accounting {
    /// When Start went out.
    pub started: Instant,
    /// When the next Interim-Update is due.
    pub next_interim: Option<Instant>,
}

/// Traffic of one session, counted on the IP packets that pass the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traffic {
    /// What RADIUS gets.
    pub counters: Counters,
    /// The last packet from the user (Idle-Timeout counts the user's silence).
    pub last_activity: Option<Instant>,
}

impl Traffic {
    /// A packet from the user.
    pub fn input(&mut self, now: Instant, len: usize) {
        self.counters.input_octets += len as u64;
        self.counters.input_packets += 1;
        self.last_activity = Some(now);
    }

    /// A packet to the user.
    pub fn output(&mut self, len: usize) {
        self.counters.output_octets += len as u64;
        self.counters.output_packets += 1;
    }
}

/// Acct-Terminate-Cause for why PPP went down (RFC 2866 §5.10), unless the LNS itself ended
/// the session for a reason of its own.
pub fn terminate_cause(
    reason: ppp::DownReason,
    ours: Option<AcctTerminateCause>,
) -> AcctTerminateCause {
    use ppp::DownReason as R;
    if let Some(cause) = ours {
        return cause;
    }
    match reason {
        R::PeerTerminated => AcctTerminateCause::USER_REQUEST,
        R::EchoTimeout => AcctTerminateCause::LOST_CARRIER,
        R::LowerLayerDown => AcctTerminateCause::LOST_SERVICE,
        R::Closed => AcctTerminateCause::ADMIN_RESET,
        R::AuthFailed | R::ServerNotAuthenticated => AcctTerminateCause::USER_ERROR,
        R::AuthTimeout | R::NoCommonAuth | R::NegotiationFailed(_) | R::LoopedBack => {
            AcctTerminateCause::PORT_ERROR
        }
        R::NoAddress => AcctTerminateCause::NAS_ERROR,
    }
}

/// An Acct-Session-Id compared with what a Disconnect/CoA-Request names.
pub fn same_session_id(ours: &AcctSessionId, theirs: &[u8]) -> bool {
    ours.as_bytes() == theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_reasons_map_to_meaningful_terminate_causes() {
        use ppp::DownReason as R;
        assert_eq!(
            terminate_cause(R::PeerTerminated, None),
            AcctTerminateCause::USER_REQUEST
        );
        assert_eq!(
            terminate_cause(R::EchoTimeout, None),
            AcctTerminateCause::LOST_CARRIER
        );
        assert_eq!(
            terminate_cause(R::LowerLayerDown, None),
            AcctTerminateCause::LOST_SERVICE
        );
        // The LNS's own reason wins over PPP's "closed".
        assert_eq!(
            terminate_cause(R::Closed, Some(AcctTerminateCause::SESSION_TIMEOUT)),
            AcctTerminateCause::SESSION_TIMEOUT
        );
    }

    #[test]
    fn traffic_counts_octets_and_packets_both_ways() {
        let mut t = Traffic::default();
        #[expect(clippy::disallowed_methods, reason = "a test's epoch")]
        let now = Instant::now();
        t.input(now, 100);
        t.input(now, 50);
        t.output(1400);
        assert_eq!(
            (
                t.counters.input_octets,
                t.counters.input_packets,
                t.counters.output_octets,
                t.counters.output_packets
            ),
            (150, 2, 1400, 1)
        );
        assert_eq!(t.last_activity, Some(now));
    }
}
