//! Operator actions on the whole engine: the LNS layer's (see [`crate::engine::lns::admin`])
//! with what only the IPsec layer knows — each peer's current public address, NAT, the IKE
//! suite and ESP transform in use — and the IKE side of `kick` and `reload`.

use super::{Engine, esp_name};
use crate::engine::lns::admin::{KickTarget, LnsReload, ReloadError, SessionStatus};
use ike::esp::Spi;
use ike::ikev1::main_mode::Authentication;
use rand_core::CryptoRng;
use std::time::Instant;

/// What a reload changes in the running engine (built and validated by the caller).
#[derive(Debug)]
pub struct Reload {
    /// Users, pool, policy, DNS.
    pub lns: LnsReload,
    /// New phase-1 authentication (pre-shared keys) for IKE SAs that start afterwards;
    /// `None` when the keys did not change.
    pub ike_auth: Option<Authentication>,
}

impl<R: CryptoRng> Engine<R> {
    /// Every session, with its IKE and ESP details. `unix_now`: the wall-clock time at `now`.
    #[must_use]
    pub fn status(&self, now: Instant, unix_now: u64) -> Vec<SessionStatus> {
        let mut sessions = self.lns.status(now, unix_now);
        for s in &mut sessions {
            let key = s.peer;
            let Some(child) = self.newest.get(&key).and_then(|spi| {
                self.children
                    .get(spi)
                    .map(|c| (c, self.sadb.inbound(Spi(*spi))))
            }) else {
                continue;
            };
            let (child, sa) = child;
            s.peer = child.path.remote;
            let phase1 = self.ike.phase1(child.cookies);
            s.nat = child.encapsulated
                || phase1.is_some_and(|p| p.nat.local_behind_nat || p.nat.peer_behind_nat);
            s.ike = phase1.map(|p| p.suite.to_string());
            s.esp = sa.map(|sa| esp_name(sa.transform()));
        }
        sessions
    }

    /// Ends the sessions `target` names (see [`crate::engine::lns::Lns::kick`]); a peer left
    /// without sessions also loses its IKE SA. Returns how many sessions were told to end.
    pub fn kick(&mut self, now: Instant, target: &KickTarget) -> usize {
        let n = self.lns.kick(now, target);
        self.pump(now);
        n
    }

    /// Applies a validated reload; on error nothing changed.
    ///
    /// # Errors
    /// [`ReloadError`] from the LNS layer.
    pub fn reload(&mut self, now: Instant, reload: Reload) -> Result<Vec<String>, ReloadError> {
        let kicked = self.lns.reload(now, reload.lns)?;
        if let Some(auth) = reload.ike_auth {
            self.ike.set_authentication(auth);
        }
        self.pump(now);
        Ok(kicked)
    }

    /// Deletes the IKE SAs of peers whose last session was kicked (their StopCCN had
    /// [`crate::engine::lns::admin::KICK_GRACE`] to be acknowledged).
    pub(super) fn close_kicked_peers(&mut self) {
        while let Some(peer) = self.lns.next_kicked_peer() {
            let sas: Vec<_> = self.keys.of_key(peer).collect();
            for cookies in sas {
                tracing::info!(%peer, "deleting the kicked peer's IKE SA");
                self.ike.close(cookies);
            }
        }
    }
}
