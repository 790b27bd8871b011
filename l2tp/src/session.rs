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

/// The calls of one tunnel by our session ID, in a sorted vector: a road-warrior tunnel holds
/// one call, and a B-tree would spend a whole node (over 500 bytes) on it. Bounded by
/// `limits.max_sessions_per_tunnel` (default 64), where a binary search is as quick.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls {
    calls: Vec<Session>,
}

impl Calls {
    fn find(&self, id: u16) -> Result<usize, usize> {
        self.calls.binary_search_by_key(&id, |s| s.local.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    pub(crate) fn get(&self, id: &u16) -> Option<&Session> {
        self.find(*id).ok().and_then(|i| self.calls.get(i))
    }

    pub(crate) fn get_mut(&mut self, id: &u16) -> Option<&mut Session> {
        self.find(*id).ok().and_then(|i| self.calls.get_mut(i))
    }

    pub(crate) fn contains_key(&self, id: &u16) -> bool {
        self.find(*id).is_ok()
    }

    /// Adds or replaces the call `id` (which must be `session.local`).
    pub(crate) fn insert(&mut self, id: u16, session: Session) {
        debug_assert_eq!(id, session.local.0);
        match self.find(id) {
            Ok(i) => self.calls[i] = session,
            Err(i) => {
                // Exact growth: most tunnels hold one call for their whole life.
                self.calls.reserve_exact(1);
                self.calls.insert(i, session);
            }
        }
    }

    pub(crate) fn remove(&mut self, id: &u16) -> Option<Session> {
        let i = self.find(*id).ok()?;
        let session = self.calls.remove(i);
        if self.calls.is_empty() {
            self.calls = Vec::new();
        }
        Some(session)
    }

    pub(crate) fn values(&self) -> core::slice::Iter<'_, Session> {
        self.calls.iter()
    }
}
