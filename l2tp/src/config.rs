//! Settings of the tunnel and session machines and of the endpoint that owns them: timers
//! (RFC 2661 §5.5, §5.7, §5.8), tunnel authentication (§5.1.1) and resource limits.

use crate::reliable;
use std::time::Duration;

/// The tunnel secret shared with the peer (RFC 2661 §5.1.1, §4.3): the workspace's one
/// secret type, zeroized on drop, compared in constant time, printed as `Secret(<redacted>)`.
pub use codec::Secret;

/// Bounds on the state peers can make us hold. At each bound the endpoint refuses the new
/// thing with the protocol's own answer and keeps what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Tunnels alive at once, closing ones included (default 4096). An SCCRQ beyond it is
    /// answered with StopCCN (General Error, Insufficient Resources) and creates no state.
    pub max_tunnels: usize,
    /// Tunnels alive at once from one peer IP address, any port (default 64). Same answer.
    pub max_tunnels_per_address: usize,
    /// Calls in one tunnel (default 64). An ICRQ beyond it is answered with CDN (General
    /// Error, Insufficient Resources).
    pub max_sessions_per_tunnel: usize,
    /// Events waiting for [`crate::Endpoint::poll_event`] (default 1024); more are dropped and
    /// counted.
    pub max_events: usize,
    /// Stateless refusals (StopCCN to an SCCRQ we do not take) waiting to be sent (default
    /// 64); more are dropped and counted.
    pub max_stateless_replies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tunnels: 4096,
            max_tunnels_per_address: 64,
            max_sessions_per_tunnel: 64,
            max_events: 1024,
            max_stateless_replies: 64,
        }
    }
}

/// Everything a tunnel needs to know about us. Shared by every tunnel of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Our Host Name AVP (RFC 2661 §4.4.3), at least one octet.
    pub host_name: Vec<u8>,
    /// Our Vendor Name AVP; empty means not sent.
    pub vendor_name: Vec<u8>,
    /// Our Firmware Revision AVP.
    pub firmware_revision: u16,
    /// Tunnel secret: when set we challenge the peer, answer its challenges and reveal hidden
    /// AVPs (RFC 2661 §5.1.1, §4.3). When unset a peer's challenge is refused.
    pub secret: Option<Secret>,
    /// Silence on the control channel after which we send HELLO (RFC 2661 §6.5; default 60 s).
    pub hello_interval: Duration,
    /// How long a tunnel is remembered after StopCCN was sent or received, so retransmissions
    /// can still be acknowledged (RFC 2661 §5.7; default 31 s, the full retransmission cycle
    /// of the default [`reliable::Config`]).
    pub hold_period: Duration,
    /// Time allowed for a tunnel or a call to reach the established state (default 60 s).
    pub setup_timeout: Duration,
    /// Ns/Nr, windows, retransmission; `max_queued` bounds the control messages waiting in one
    /// tunnel.
    pub reliable: reliable::Config,
    /// Resource limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host_name: b"l2sec".to_vec(),
            vendor_name: b"l2sec".to_vec(),
            firmware_revision: 0x0100,
            secret: None,
            hello_interval: Duration::from_secs(60),
            hold_period: Duration::from_secs(31),
            setup_timeout: Duration::from_secs(60),
            reliable: reliable::Config::default(),
            limits: Limits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_printed() {
        let config = Config {
            secret: Some(Secret::new(*b"hunter2")),
            ..Config::default()
        };
        let printed = format!("{config:?}");
        assert!(printed.contains("<redacted>") && !printed.contains("hunter2"));
    }
}
