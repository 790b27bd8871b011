//! The indexes a RADIUS Disconnect-Request or CoA-Request (RFC 5176 §3) is resolved through,
//! so that finding the named sessions costs O(log n) plus the sessions found, not a scan of
//! every session.
//!
//! Framed-IP-Address and NAS-Port need no index of their own: the LNS already maps addresses
//! to sessions, and NAS-Port is the tunnel and session IDs, i.e. the session's key. The other
//! session identification attributes each get one here: User-Name, Acct-Session-Id and
//! Calling-Station-Id (the peer's IP address, as text).
//!
//! The peer index also serves the operator's kick: whether a peer (address and port) still
//! has a session is one range lookup.

use super::Key;
use l2tp::{SessionId, TunnelId};
use radius::AcctSessionId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

const FIRST: Key = (TunnelId(0), SessionId(0));
const LAST: Key = (TunnelId(u16::MAX), SessionId(u16::MAX));

/// Sessions by User-Name, Acct-Session-Id and peer address. Each session has at most one
/// entry in each, so the indexes are bounded by the session table.
#[derive(Debug, Default)]
pub(super) struct SessionIndex {
    /// (name presented, session); a user may have several sessions.
    by_user: BTreeSet<(String, Key)>,
    /// Acct-Session-Ids are unique per session.
    by_acct_session_id: BTreeMap<AcctSessionId, Key>,
    /// (peer IP address, peer port, session); several sessions can come from one address,
    /// and from one address and port (several tunnels, several calls in a tunnel).
    by_peer: BTreeSet<(IpAddr, u16, Key)>,
}

impl SessionIndex {
    /// A new session from `peer`, with its Acct-Session-Id when RADIUS accounts.
    pub(super) fn insert(&mut self, key: Key, peer: SocketAddr, acct: Option<AcctSessionId>) {
        self.by_peer.insert((peer.ip(), peer.port(), key));
        if let Some(id) = acct {
            self.by_acct_session_id.insert(id, key);
        }
    }

    /// The session now goes by `user` instead of `old`.
    pub(super) fn rename(&mut self, key: Key, old: Option<&str>, user: &str) {
        if old == Some(user) {
            return;
        }
        if let Some(old) = old {
            self.by_user.remove(&(old.to_owned(), key));
        }
        self.by_user.insert((user.to_owned(), key));
    }

    /// The session is gone.
    pub(super) fn remove(
        &mut self,
        key: Key,
        peer: SocketAddr,
        acct: Option<&AcctSessionId>,
        user: Option<&str>,
    ) {
        self.by_peer.remove(&(peer.ip(), peer.port(), key));
        if let Some(id) = acct {
            self.by_acct_session_id.remove(id);
        }
        if let Some(user) = user {
            self.by_user.remove(&(user.to_owned(), key));
        }
    }

    /// Sessions whose user presented `name` (compared as bytes; a name that is not UTF-8
    /// names nobody, as no session's name is anything else).
    pub(super) fn by_user(&self, name: &[u8]) -> Vec<Key> {
        let Ok(name) = std::str::from_utf8(name) else {
            return Vec::new();
        };
        let name = name.to_owned();
        self.by_user
            .range((name.clone(), FIRST)..=(name, LAST))
            .map(|(_, key)| *key)
            .collect()
    }

    /// The session with Acct-Session-Id `id`.
    pub(super) fn by_acct_session_id(&self, id: &[u8]) -> Option<Key> {
        let id = AcctSessionId::from_bytes(id)?;
        self.by_acct_session_id.get(&id).copied()
    }

    /// Sessions whose peer's address reads `calling_station_id`.
    pub(super) fn by_peer(&self, calling_station_id: &[u8]) -> Vec<Key> {
        let Some(address) = std::str::from_utf8(calling_station_id)
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok())
        else {
            return Vec::new();
        };
        self.by_peer
            .range((address, 0, FIRST)..=(address, u16::MAX, LAST))
            .map(|(_, _, key)| *key)
            .collect()
    }

    /// Whether `peer` (address and port) has a session. O(log n).
    pub(super) fn has_peer(&self, peer: SocketAddr) -> bool {
        let (ip, port) = (peer.ip(), peer.port());
        self.by_peer
            .range((ip, port, FIRST)..=(ip, port, LAST))
            .next()
            .is_some()
    }

    /// Entries in all indexes, for tests that check nothing outlives its session.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_user.len() + self.by_acct_session_id.len() + self.by_peer.len()
    }
}
