//! What the engine counts and reports beyond its packets: the counters and gauges
//! ([`Engine::snapshot`]) and the LNS events, each counted as it leaves
//! ([`Engine::poll_event`]).

use super::{Drop, Engine, EngineStats, LnsEvent, Snapshot};
use rand_core::CryptoRng;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Instant;

/// ISAKMP header length (RFC 2408 §3.1).
const ISAKMP_HEADER_LEN: usize = 28;
/// Exchange type Identity Protection, i.e. Main Mode (RFC 2408 §3.1, RFC 2409 §5).
const MAIN_MODE: u8 = 2;

/// Whether `message` is the first message of a Main Mode: the responder cookie is still zero
/// (RFC 2408 §3.1).
fn starts_main_mode(message: &[u8]) -> bool {
    message.get(..ISAKMP_HEADER_LEN).is_some_and(|h| {
        h.get(8..16).is_some_and(|c| c.iter().all(|b| *b == 0)) && h.get(18) == Some(&MAIN_MODE)
    })
}

impl<R: CryptoRng> Engine<R> {
    /// The counters.
    pub const fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Counters and gauges now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            stats: self.stats,
            ike_sas: self.ike.established(),
            ike_half_open: self.ike.half_open(),
            child_sas: self.children.len(),
            tunnels: self.lns.tunnels(),
            sessions: self.lns.sessions(),
            pool_in_use: usize::try_from(self.lns.pool().in_use()).unwrap_or(usize::MAX),
            connecting: self.attempts.len(),
        }
    }

    /// The next event of the LNS layer, counted as a connection outcome (and the handshake
    /// timed) at `now`, when the driver takes it.
    pub fn poll_event(&mut self, now: Instant) -> Option<LnsEvent> {
        let event = self.lns.poll_event()?;
        self.attempts.lns(&mut self.stats, now, &event);
        Some(event)
    }

    /// Counts what a UDP datagram ended with, and notes the first message of a connection.
    pub(super) fn count_udp(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        buf: &[u8],
        result: &Result<Option<Range<usize>>, Drop>,
    ) {
        self.stats.result(result, Some(remote.ip()));
        let isakmp = match local.port() {
            super::L2TP_PORT => None,
            // RFC 3948 §2.2: IKE on 4500 follows a four-byte zero non-ESP marker.
            4500 => buf.strip_prefix(&[0u8; 4][..]),
            _ => Some(buf),
        };
        if isakmp.is_some_and(starts_main_mode) {
            match result {
                Ok(_) => self.attempts.first_packet(now, remote.ip()),
                // Refused at message 1: the attempt ends where it starts.
                Err(Drop::Ike(ike::endpoint::Discard::Refused(r))) => {
                    (self.attempts).refused_at_once(&mut self.stats, now, remote.ip(), *r);
                }
                Err(_) => {}
            }
        }
    }
}
