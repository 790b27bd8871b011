//! Per-call state inside a tunnel: the incoming-call machines of RFC 2661 §7.4.1 (LAC) and
//! §7.4.2 (LNS). The transitions are driven by [`crate::Tunnel`], which owns the control
//! channel the call messages travel on.
//!
//! ```text
//!  LNS:  (ICRQ) ──send ICRP──▶ WaitConnect ──ICCN──▶ Established ──CDN either way──▶ gone
//!  LAC:  WaitTunnel ──tunnel up, send ICRQ──▶ WaitReply ──ICRP, send ICCN──▶ Established
//! ```

use crate::SessionId;
use std::time::Instant;

/// Where one call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// LAC: the call is placed but the tunnel is not established yet.
    WaitTunnel,
    /// LAC: ICRQ sent, waiting for ICRP.
    WaitReply,
    /// LNS: ICRP sent, waiting for ICCN.
    WaitConnect,
    /// ICCN sent (LAC) or received (LNS): data may flow.
    Established,
}

/// One call.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Our session ID: what the peer puts in the header.
    pub(crate) local: SessionId,
    /// The peer's session ID: what we put in the header (0 until learnt).
    pub(crate) peer: SessionId,
    pub(crate) state: SessionState,
    pub(crate) call_serial_number: u32,
    /// When a call that is not established yet is abandoned.
    pub(crate) deadline: Option<Instant>,
}
